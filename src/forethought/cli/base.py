"""The ``forethought`` command group and what every command shares: errors, trace
loading, common options, progress bars."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from inspect import cleandoc
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from forethought import __version__
from forethought.core.errors import ForethoughtError
from forethought.core.numbers import json_safe
from forethought.core.resources import Resource
from forethought.telemetry.load import FORMATS, load_trace
from forethought.telemetry.series import Telemetry

if TYPE_CHECKING:  # imported where used: the command line starts faster without it
    from forethought.allocation.policy import VmInfo

# No markup anywhere: what is printed quotes paths, VM names and the trace's own cells,
# where "[...]" is text (a "[/x]" in a cell would otherwise crash the print).
stdout = Console(markup=False)
stderr = Console(stderr=True, markup=False)

EXIT_ERROR = 1


def _fail(message: str) -> NoReturn:
    stderr.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)
    sys.exit(EXIT_ERROR)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn forethought's documented errors into a message and a non-zero exit."""
    try:
        yield
    except ForethoughtError as exc:
        _fail(str(exc))
    except OSError as exc:  # a file the system would not let us read (or write)
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{(exc.strerror or str(exc)).lower()}")
    except MemoryError:
        _fail("out of memory: run fewer VMs, hosts or steps at once (--limit, --hosts)")


def _json(obj: object, indent: int | None = 2) -> str:
    """Strict JSON for scripts: a value that is not a number (NaN, infinity) is null."""
    return json.dumps(json_safe(obj), indent=indent, allow_nan=False)


def _writable(path: str, what: str = "") -> None:
    """Refuse an output path that cannot be written, before a long run and not after it
    (``what`` names it in messages, "--log PATH" say; the path alone by default)."""
    if not path.strip():
        _fail("an output path is empty; give a file name")
    target = Path(path)
    if target.is_dir():
        _fail(f"{path}: is a directory; give a file name for the output")
    parent = target.parent if str(target.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        _fail(f"cannot write {path}: {parent} is a file, not a directory")
    if not parent.is_dir():
        _fail(f"cannot write {path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        _fail(f"cannot write {path}: the directory {parent} is not writable")
    _not_an_input(target, what)


def _read_as_trace(directory: Path, target: Path) -> bool:
    """Whether a file written at ``target`` would be read as part of the trace in
    ``directory``: the readers take the directory's own visible files (a PlanetLab day
    every one, a Bitbrains folder its .csv and .csv.gz), never a subdirectory's."""
    if target.name.startswith(".") or target.resolve().parent != directory.resolve():
        return False
    data = (".csv", ".csv.gz")
    bitbrains = any(p.name.endswith(data) for p in directory.iterdir() if p.is_file())
    return target.name.endswith(data) if bitbrains else True


#: The parameters, in every command, that name files the command reads.
INPUT_PARAMS = {
    "trace": "the trace",
    "policy": "the policy file",
    "policy_file": "the policy file",
    "allocation_policy": "the policy file",
    "inventory": "the inventory",
}


def _not_an_input(target: Path, what: str = "") -> None:
    """Refuse an output that would overwrite (or, for a directory trace, land among) one
    of the command's own inputs: the run would destroy what it was given."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return
    for name, label in INPUT_PARAMS.items():
        value = ctx.params.get(name)
        if not isinstance(value, str) or not value.strip() or value.startswith("bundled:"):
            continue
        given = Path(value)
        if not given.exists():
            continue
        output = what or str(target)
        if given.is_dir():
            if _read_as_trace(given, target):
                _fail(
                    f"{output} is inside {label} {value}: it would be read as part of the "
                    "trace next time; write it elsewhere"
                )
        elif target.exists() and os.path.samefile(target, given):
            _fail(f"{output} is {label} {value}: writing it would destroy the input")


class Finite(click.FloatRange):
    """A float range that also refuses NaN and infinity, which pass click's own range
    check (every comparison with NaN is false) and fail later, far from the option."""

    name = "finite float range"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        number: float = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


_RESOURCE_CHOICE = click.Choice([r.value for r in Resource], case_sensitive=False)


TRACE_HELP = (
    "TRACE is a PlanetLab day directory, a Bitbrains GWA-T-12 directory or file (.csv or "
    ".csv.gz), a long-format CSV or Parquet file (vm,timestamp,resource,value[,unit]), or "
    "bundled:NAME for a dataset shipped with forethought (see `forethought datasets`). "
    "Where TRACE is optional ([TRACE] above), it defaults to bundled:planetlab-20110303."
)


def _trace_help(func: Callable[..., None]) -> Callable[..., None]:
    """Append the description of TRACE to a command's manual text."""
    # Dedent first: click dedents the whole text by its smallest indent, which the
    # appended paragraph (at column 0) would otherwise bring down to nothing.
    func.__doc__ = cleandoc(func.__doc__ or "") + "\n\n" + TRACE_HELP
    return func


def _load(
    trace: str, fmt: str | None, skip_bad: bool, limit: int | None, repairs: bool = True
) -> Telemetry:
    """Read a trace, listing on stderr what --skip-bad skipped and (unless ``repairs`` is
    False, for a command that shows them itself) how many values were repaired."""
    telemetry = load_trace(trace, fmt, skip_bad=skip_bad, limit=limit)
    rep = telemetry.repairs
    for warning in rep.warnings:
        stderr.print(f"warning: {warning}", highlight=False, soft_wrap=True)
    if repairs and (rep.clipped or rep.duplicates_merged):
        # Never silent: a clipped value or an averaged duplicate changes what is scored.
        stderr.print(
            f"repaired on reading: {rep.clipped:,} value(s) clipped to their range, "
            f"{rep.duplicates_merged:,} sample(s) sharing a slot averaged "
            "(forethought inspect says more)",
            highlight=False,
            soft_wrap=True,
        )
    if rep.skipped:
        stderr.print(f"skipped {len(rep.skipped)} bad record(s) (--skip-bad):", highlight=False)
        for rec in rep.skipped[:20]:
            where = rec.path if rec.line is None else f"{rec.path}, line {rec.line}"
            stderr.print(f"  {where}: {rec.reason}", highlight=False)
        if len(rep.skipped) > 20:
            stderr.print(f"  ... and {len(rep.skipped) - 20} more", highlight=False)
    return telemetry


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="forethought")
def main() -> None:
    """forethought: predict every VM's demand and act before it arrives.

    forethought reads VM telemetry (CPU, memory, disk and network), forecasts every series
    as a calibrated probability distribution, sizes VMs ahead of their demand, and moves
    them before their hosts overload, in a CloudSim-compatible simulator, in a control
    loop over a simulated cluster, or on real hypervisors through libvirt.

    \b
    Start here:
      forethought datasets                      what is bundled, where the public traces are
      forethought inspect bundled:planetlab-20110303
      forethought backtest bundled:planetlab-20110303 --versus median,ewma --report bt.html
      forethought compare bundled:planetlab-20110303 --policies lr-mmt,predictive
      forethought rightsize bundled:planetlab-20110303
      forethought hybrid --fail-every 6 --report two-sites.html
      forethought hosts --connect qemu:///system
      forethought run --connect qemu:///system          a dry run; --apply to act

    Every command exits with status 0 on success, 1 on a data or usage error (the message
    names the file, line or field), and 2 on a malformed command line.
    """


def _said(text: str, when: str) -> str:
    """Help text, prefixed with the kind of run it applies to ("With --simulate: ")."""
    return f"{when}{text[0].lower()}{text[1:]}" if when else text


def _format_opt(when: str = "") -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default=None,
        help=_said("Trace format; detected from the files when omitted.", when),
    )


def _skip_opt(when: str = "") -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        "--skip-bad",
        is_flag=True,
        help=_said(
            "Skip bad records (listed on stderr) instead of stopping at the first one.", when
        ),
    )


def _limit_opt(when: str = "") -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        "--limit",
        type=click.IntRange(min=1),
        default=None,
        help=_said("Read only the first N VMs.", when),
    )


_format_option, _skip_option, _limit_option = _format_opt(), _skip_opt(), _limit_opt()


def _reading_options(when: str = "") -> Callable[[Callable[..., None]], Callable[..., None]]:
    """--format, --skip-bad and --limit: how a command reads its trace; ``when`` prefixes
    their help where only one kind of run reads a trace."""

    def add(func: Callable[..., None]) -> Callable[..., None]:
        return _format_opt(when)(_skip_opt(when)(_limit_opt(when)(func)))

    return add


_resource_option = click.option(
    "--resource",
    "resource_name",
    type=_RESOURCE_CHOICE,
    default="cpu",
    show_default=True,
    help="Which resource's series to forecast.",
)


def _report_options(
    contents: str, drawn: str, chosen: str = "those whose hourly level moves most"
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``--report FILE`` (an HTML report of ``contents``) and ``--watch N`` (how many
    ``drawn`` it draws, and which: ``chosen``)."""

    def add(func: Callable[..., None]) -> Callable[..., None]:
        func = click.option(
            "--watch",
            type=click.IntRange(min=0, max=50),
            default=None,
            help=f"{drawn[:1].upper()}{drawn[1:]} drawn in the report (default 3, at most "
            f"50): {chosen}.",
        )(func)
        return click.option(
            "--report",
            type=click.Path(dir_okay=False, writable=True),
            default=None,
            help=f"Write a self-contained HTML report: {contents} (needs forethought[report]).",
        )(func)

    return add


def _watch_needs_report(watch: int | None, report: str | None, drawn: str) -> int:
    """How many to draw (3 unless told), refusing ``--watch`` without ``--report``, and a
    report that could not be written (its path, or no matplotlib), before anything runs."""
    if watch is not None and report is None:
        _fail(f"--watch chooses the {drawn} drawn in --report; give --report too")
    if report is not None:
        _report_writable(report)
    return 3 if watch is None else watch


def _report_writable(path: str) -> None:
    """Refuse an HTML report that could not be written (its path, or no matplotlib) before
    a run, not after it."""
    _writable(path)
    from forethought.core.htmlpage import pyplot

    with _errors():
        pyplot()


@contextmanager
def _progress(enabled: bool, label: str) -> Iterator[Callable[[int, int], None]]:
    # A bar only where a person watches: in a pipe or a CI log it would leave blank lines.
    if not enabled or not stderr.is_terminal:
        yield lambda done, total: None
        return
    columns = (
        TextColumn("{task.description}", markup=False),  # the label may quote a path
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    # Started at the first report of progress: a run that fails while checking its input
    # must leave nothing (not even a blank line) before its error message.
    bar = Progress(*columns, console=stderr, transient=True)
    task: list[TaskID] = []

    def advance(done: int, total: int) -> None:
        if not task:
            bar.start()
            task.append(bar.add_task(label, total=None))
        bar.update(task[0], completed=done, total=total)

    try:
        yield advance
    finally:
        if task:
            bar.stop()


_inventory_option = click.option(
    "--inventory",
    type=click.Path(dir_okay=False),
    default=None,
    help="CSV of the VMs' tags and applications (columns vm,tags,application; tags "
    "separated by ';'), for the groups of a policy file that match on them (it goes with "
    "the command's policy option).",
)


def _vm_infos(vm_ids: tuple[str, ...], inventory: str | None) -> list[VmInfo]:
    """The trace's VMs as a policy sees them, with the inventory's tags and applications."""
    from forethought.allocation.inventory import load_inventory, vm_infos

    infos, absent = vm_infos(vm_ids, load_inventory(inventory) if inventory is not None else None)
    if absent:
        shown = ", ".join(absent[:5]) + (" ..." if len(absent) > 5 else "")
        stderr.print(
            f"note: {len(absent):,} VM(s) of the inventory are not in the trace: {shown}",
            highlight=False,
            soft_wrap=True,
        )
    return infos


def _connect_options(func: Callable[..., None], required: bool = True) -> Callable[..., None]:
    """--connect (libvirt URIs, one per host) and --site (URI=SITE), for every command that
    reaches real hypervisors; check them with :func:`_sites`."""
    func = click.option(
        "--site",
        "site_pairs",
        multiple=True,
        help="URI=SITE: the site a host belongs to (repeatable; default: private). A site "
        "named public is rented capacity; any other name is private.",
    )(func)
    return click.option(
        "--connect",
        "uris",
        multiple=True,
        required=required,
        help="A libvirt connection URI, one per host (repeatable): qemu+ssh://host/system, "
        "qemu:///system, or test:///default for libvirt's test hypervisor.",
    )(func)


def _sites(uris: tuple[str, ...], site_pairs: tuple[str, ...]) -> dict[str, str]:
    """The --site assignments, after checking them and the --connect URIs."""
    empty = [u for u in uris if not u.strip()]
    if empty:  # libvirt would quietly take its default URI instead
        _fail("--connect needs a URI (an empty one would reach libvirt's default)")
    repeated = sorted({u for u in uris if uris.count(u) > 1})
    if repeated:
        _fail(f"--connect names {', '.join(repeated)} twice")
    sites: dict[str, str] = {}
    for pair in site_pairs:
        uri, sep, site = pair.rpartition("=")
        if not sep or not uri or not site:
            _fail(f"--site {pair!r}: write URI=SITE")
        if uri not in uris:
            _fail(f"--site {pair!r}: {uri} is not one of the --connect URIs")
        if uri in sites and sites[uri] != site:
            _fail(f"--site puts {uri} in two sites, {sites[uri]} and {site}")
        sites[uri] = site
    return sites
