"""A VM inventory: the tags and application of each VM, for policies that group by them.

A trace carries VM names only, so a policy group that matches on tags or an application
takes no VM of it unless an inventory says which VM is what. The inventory is a CSV file
an operator can export from their cloud (OpenStack metadata, libvirt domain metadata...):

    vm,tags,application
    db-01,prod;eu,postgres
    batch-7,batch,

``vm`` is required; ``tags`` (separated by ``;`` or spaces) and ``application`` are
optional columns and may be empty; other columns (an export's owner, flavour...) are
ignored. Errors name the file and the line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from forethought.allocation.policy import VmInfo
from forethought.core.errors import ForethoughtError

COLUMNS = ("vm", "tags", "application")


class InventoryError(ForethoughtError):
    """The inventory file is unreadable or malformed; the message names the file and line."""


def load_inventory(path: str | Path) -> dict[str, VmInfo]:
    """Each VM's name, tags and application, keyed by name."""
    if not str(path).strip():  # Path("") is "." and would read as a directory
        raise InventoryError("the inventory file name is empty; give the path of a CSV file")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InventoryError(f"{path}: no such file") from None
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read the inventory: {exc}") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise InventoryError(
            f"{path}, line {line}: not UTF-8 text (byte {exc.start}); an inventory is CSV text"
        ) from None
    # Parsed as one stream: a quoted cell may hold a comma or a line break, and the
    # reader's own line count stays the file's.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header_row = next(reader, [])
    except csv.Error as exc:
        raise InventoryError(f"{path}, line 1: malformed CSV: {exc}") from None
    if not any(cell.strip() for cell in header_row):
        expected = ",".join(COLUMNS)
        raise InventoryError(f"{path}: empty file; expected a header line such as {expected}")
    header = [cell.strip().lower() for cell in header_row]
    known = [c for c in header if c in COLUMNS]
    if "vm" not in header or len(set(known)) != len(known):
        raise InventoryError(
            f"{path}, line 1: the header must name the column vm and optionally tags and "
            f"application, each once (other columns are ignored); got {','.join(header_row)}"
        )
    out: dict[str, VmInfo] = {}
    while True:
        start = reader.line_num + 1  # the line the next record starts on
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InventoryError(
                f"{path}, line {start}: malformed CSV ({exc}: an unterminated quote?)"
            ) from None
        if not any(cell.strip() for cell in row):
            continue  # blank lines are allowed
        if len(row) != len(header):
            raise InventoryError(
                f"{path}, line {start}: {len(row)} column(s), the header has {len(header)}"
            )
        cells = {
            name: cell.strip() for name, cell in zip(header, row, strict=True) if name in COLUMNS
        }
        name = cells["vm"]
        if not name:
            raise InventoryError(f"{path}, line {start}: the vm column is empty")
        if name in out:
            raise InventoryError(f"{path}, line {start}: VM {name!r} is listed twice")
        tags = frozenset(cells.get("tags", "").replace(";", " ").split())
        out[name] = VmInfo(name, tags, cells.get("application") or None)
    return out


def vm_infos(
    vm_ids: Sequence[str], inventory: dict[str, VmInfo] | None
) -> tuple[list[VmInfo], list[str]]:
    """What a policy can match each VM of a trace on, and the inventory's VMs not in it.

    A VM the inventory does not list is matched on its name only.
    """
    if inventory is None:
        return [VmInfo(v) for v in vm_ids], []
    present = set(vm_ids)
    missing = [name for name in inventory if name not in present]
    return [inventory.get(v, VmInfo(v)) for v in vm_ids], missing
