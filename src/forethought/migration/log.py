"""The action log: every plan and every state change of a migration, durably, in order.

One JSON object per line, appended and fsynced before the call returns, so once the
orchestrator has acted on a transition it survives a crash. Opening a log replays it into
the latest state of every action, which is how a restarted orchestrator picks up the
migrations it left running. A crash can only cut the last write short; such a torn last
line is reported and dropped (it never held a whole record). Damage anywhere else is not
explained by a crash, so it stops the replay with the file and line.
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any

from forethought.core.errors import ForethoughtError


class ActionState(Enum):
    """Where an action stands; REJECTED, COMPLETED, FAILED and ROLLED_BACK are final,
    except that a FAILED action is ROLLED_BACK when its VM is found safe on its source."""

    PLANNED = "planned"
    REJECTED = "rejected"
    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"
    ABORTED = "aborted"
    ROLLED_BACK = "rolled_back"


S = ActionState
#: The transitions the orchestrator makes. PLANNED -> FAILED is how a restart records a
#: plan whose start was never logged and whose outcome cannot be known.
TRANSITIONS: Mapping[ActionState, frozenset[ActionState]] = {
    S.PLANNED: frozenset({S.REJECTED, S.STARTED, S.FAILED}),
    S.STARTED: frozenset({S.COMPLETED, S.FAILED, S.ABORTED, S.ROLLED_BACK}),
    S.ABORTED: frozenset({S.ROLLED_BACK, S.FAILED}),
    S.FAILED: frozenset({S.ROLLED_BACK}),
    S.REJECTED: frozenset(),
    S.COMPLETED: frozenset(),
    S.ROLLED_BACK: frozenset(),
}
#: States in which an action may still change without anyone submitting anything.
OPEN = frozenset({S.PLANNED, S.STARTED, S.ABORTED})


class LogError(ForethoughtError):
    """The log cannot be read or written: names the file and, where known, the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path, self.line, self.reason = str(path), line, message
        where = self.path if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class ActionRecord:
    """One line of the log: an action entering ``state`` at ``time``.

    ``predicted`` is what the planner expected of the move (kept to learn from);
    ``facts`` what the orchestrator knew or measured (shares, expected and actual
    durations); ``migration`` the backend's id once started.
    """

    time: float
    action: str
    vm: str
    source: str
    target: str
    state: ActionState
    reason: str = ""
    message: str = ""
    migration: str = ""
    predicted: Mapping[str, float] = field(default_factory=dict)
    facts: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # NaN would be written, then refused by the replay: refuse it before it is written.
        figures = {"time": self.time, **self.predicted, **self.facts}
        bad = [k for k, v in figures.items() if math.isnan(v)]
        if bad:
            raise ForethoughtError(f"action {self.action}: {bad[0]} is NaN")

    def to_json(self) -> str:
        return json.dumps(
            {
                "time": self.time,
                "action": self.action,
                "vm": self.vm,
                "source": self.source,
                "target": self.target,
                "state": self.state.value,
                "reason": self.reason,
                "message": self.message,
                "migration": self.migration,
                "predicted": dict(self.predicted),
                "facts": dict(self.facts),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> ActionRecord:
        """Parse one line; ValueError says what is wrong with it."""
        obj = json.loads(text)
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        return cls(
            time=_number(obj, "time"),
            action=_text(obj, "action", required=True),
            vm=_text(obj, "vm", required=True),
            source=_text(obj, "source", required=True),
            target=_text(obj, "target", required=True),
            state=_state(obj),
            reason=_text(obj, "reason"),
            message=_text(obj, "message"),
            migration=_text(obj, "migration"),
            predicted=_figures(obj, "predicted"),
            facts=_figures(obj, "facts"),
        )


class ActionLog:
    """An append-only JSON-lines log and the latest record of every action in it.

    Use :meth:`open`. ``warnings`` lists what the replay tolerated (a torn last line).
    One process writes a log at a time: ``exclusive`` holds a lock on the file until
    :meth:`close` (or the process ends), and a second writer is refused instead of
    interleaving its transitions with the first one's. ``read_only`` replays the log and
    refuses every append (what a dry run needs). Each append opens, writes, fsyncs and
    closes the file: the fsync costs far more than the open, and no handle outlives a
    record.
    """

    def __init__(
        self, path: str | Path, *, read_only: bool = False, exclusive: bool = False
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.warnings: list[str] = []
        self._latest: dict[str, ActionRecord] = {}
        self._last_number = 0
        self._truncate_to: int | None = None  # drop a torn tail before the next append
        self._needs_newline = False
        self._lock: int | None = None  # the descriptor holding the lock
        if read_only and exclusive:
            raise ForethoughtError("a log opened read only takes no lock")
        if self.path.exists() and not self.path.is_file():
            # /dev/zero would never end a replay, /dev/null would lose every record
            raise LogError(self.path, "not a regular file; the action log must be one")
        if exclusive:
            self._lock = _lock(self.path)
        try:
            if self.path.exists():
                self._replay()
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(
        cls, path: str | Path, *, read_only: bool = False, exclusive: bool = False
    ) -> ActionLog:
        """Open (or start) the log at ``path`` and replay what it holds."""
        return cls(path, read_only=read_only, exclusive=exclusive)

    # -- reading -----------------------------------------------------------------------
    @property
    def latest(self) -> Mapping[str, ActionRecord]:
        """The latest record of every action, by action id, in order of first appearance."""
        return self._latest

    def open_actions(self) -> list[ActionRecord]:
        """Actions not yet settled (planned, started or aborted), oldest first."""
        return [r for r in self._latest.values() if r.state in OPEN]

    def new_id(self) -> str:
        """A fresh action id, never used in this log before."""
        self._last_number += 1
        return f"act-{self._last_number}"

    @staticmethod
    def read(path: str | Path) -> list[ActionRecord]:
        """Every complete record of a log file, in order (a torn last line is skipped)."""
        return [record for _line, record in _parse(Path(path)).records]

    def _replay(self) -> None:
        parsed = _parse(self.path)
        for line, record in parsed.records:
            try:
                self._apply(record)
            except ForethoughtError as e:
                raise LogError(self.path, str(e), line) from None
        if parsed.torn_line is not None:
            self.warnings.append(
                f"{self.path}, line {parsed.torn_line}: torn last line ignored "
                f"({parsed.size - parsed.whole} bytes without a newline)"
            )
            self._truncate_to = parsed.whole
        elif parsed.whole < parsed.size:
            self._needs_newline = True  # the last record is whole but its newline was lost

    def _apply(self, record: ActionRecord) -> None:
        before = self._latest.get(record.action)
        if before is None and record.state is not ActionState.PLANNED:
            raise ForethoughtError(
                f"action {record.action} starts as {record.state.value}, not planned"
            )
        if before is not None:
            if record.state not in TRANSITIONS[before.state]:
                raise ForethoughtError(
                    f"action {record.action}: {before.state.value} cannot become "
                    f"{record.state.value}"
                )
            if (record.vm, record.source, record.target) != (
                before.vm,
                before.source,
                before.target,
            ):
                raise ForethoughtError(f"action {record.action} changed its VM or hosts")
        self._latest[record.action] = record
        number = record.action.removeprefix("act-")
        if number.isdigit():
            self._last_number = max(self._last_number, int(number))

    # -- writing -----------------------------------------------------------------------
    def append(self, record: ActionRecord) -> None:
        """Check the transition, write the record and fsync it; returns once it is on disk."""
        if self.read_only:
            raise LogError(self.path, f"opened read only: {record.action} was not logged")
        try:
            self._apply(record)
        except ForethoughtError as e:
            raise LogError(self.path, f"refused to log: {e}") from None
        line = record.to_json().encode() + b"\n"
        if self._needs_newline:
            line = b"\n" + line
        try:
            if self._truncate_to is not None:
                # The torn bytes are not a record; cutting them keeps every line whole,
                # and the next record starts on a fresh line where the crash left off.
                with self.path.open("r+b") as f:
                    f.truncate(self._truncate_to)
                    os.fsync(f.fileno())
                self._truncate_to = None
            created = not self.path.exists()
            with self.path.open("ab") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            if created:
                _fsync_directory(self.path.parent)  # so the new file's name survives too
        except OSError as e:
            raise LogError(self.path, f"cannot write: {e.strerror or e}") from None
        self._needs_newline = False

    def close(self) -> None:
        """Release the lock, if held (nothing else stays open between appends)."""
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor releases its lock
            self._lock = None

    def __enter__(self) -> ActionLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class _Parsed:
    records: list[tuple[int, ActionRecord]]  # (line number, record)
    size: int  # bytes in the file
    whole: int  # bytes up to and including the last newline
    torn_line: int | None  # the number of an unterminated, unparseable last line


def _parse(path: Path) -> _Parsed:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise LogError(path, f"cannot read: {e.strerror or e}") from None
    lines = data.split(b"\n")
    records: list[tuple[int, ActionRecord]] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = ActionRecord.from_json(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, ForethoughtError) as e:
            if number == len(lines):  # unterminated: a crash cut the last write short
                return _Parsed(records, len(data), data.rfind(b"\n") + 1, number)
            raise LogError(path, f"corrupt record: {e}", number) from None
        records.append((number, record))
    return _Parsed(records, len(data), data.rfind(b"\n") + 1, None)


if sys.platform == "win32":  # pragma: no cover - no flock; one writer is on trust

    def _lock(path: Path) -> int:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)

else:
    import fcntl

    def _lock(path: Path) -> int:
        """Open ``path`` (created if need be) and lock it for this process alone."""
        created = not path.exists()
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as e:
            raise LogError(path, f"cannot open: {e.strerror or e}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise LogError(path, "not a regular file; the action log must be one")
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LogError(
                path,
                "in use by another run (it holds the log's lock); give each run its own "
                "log, or stop the other run first",
            ) from None
        except BaseException:
            os.close(fd)
            raise
        if created:
            _fsync_directory(path.parent)  # so the new file's name survives a crash
        return fd


def _fsync_directory(directory: Path) -> None:
    flags = getattr(os, "O_DIRECTORY", None)
    if flags is None:  # not POSIX: nothing to sync a directory with
        return
    fd = os.open(directory, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _number(obj: dict[str, Any], key: str) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{key!r} must be a number, got {value!r}")
    return float(value)


def _text(obj: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = obj.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value):
        need = "a non-empty string" if required else "a string"
        raise ValueError(f"{key!r} must be {need}, got {value!r}")
    return value


def _state(obj: dict[str, Any]) -> ActionState:
    value = obj.get("state")
    try:
        return ActionState(value)
    except ValueError:
        raise ValueError(f"'state' must be one of the action states, got {value!r}") from None


def _figures(obj: dict[str, Any], key: str) -> dict[str, float]:
    value = obj.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{key!r} must be an object of numbers")
    return {str(k): _number(value, k) for k in value}
