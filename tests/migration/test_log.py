"""The action log: durable appends, replay to the latest state, and damaged files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from forethought.core.errors import ForethoughtError
from forethought.migration.log import ActionLog, ActionRecord, ActionState

S = ActionState


def record(
    action: str,
    state: ActionState,
    time: float = 0.0,
    *,
    vm: str = "vm-0",
    migration: str = "",
    message: str = "",
    predicted: dict[str, float] | None = None,
    facts: dict[str, float] | None = None,
) -> ActionRecord:
    return ActionRecord(
        time=time,
        action=action,
        vm=vm,
        source="host-0",
        target="host-4",
        state=state,
        message=message,
        migration=migration,
        predicted=predicted or {},
        facts=facts or {},
    )


def write_three(path: Path) -> None:
    with ActionLog.open(path) as log:
        log.append(record("act-1", S.PLANNED, predicted={"target_pressure": 0.4}))
        log.append(record("act-1", S.STARTED, 1.0, migration="mig-1", facts={"share": 25.0}))
        log.append(record("act-2", S.PLANNED, 2.0, vm="vm-1"))


def test_every_transition_is_one_json_line_with_its_figures(tmp_path: Path) -> None:
    path = tmp_path / "actions.jsonl"
    write_three(path)
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    first = json.loads(lines[0])
    assert first["action"] == "act-1"
    assert first["state"] == "planned"
    assert first["vm"] == "vm-0"
    assert (first["source"], first["target"]) == ("host-0", "host-4")
    assert first["predicted"] == {"target_pressure": 0.4}
    second = json.loads(lines[1])
    assert (second["state"], second["migration"], second["time"]) == ("started", "mig-1", 1.0)
    assert second["facts"] == {"share": 25.0}


def test_every_append_is_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    with ActionLog.open(tmp_path / "a.jsonl") as log:
        log.append(record("act-1", S.PLANNED))
        after_first = len(synced)
        log.append(record("act-1", S.REJECTED, message="full"))
    assert after_first >= 1
    assert len(synced) == after_first + 1  # one fsync per record, once the file exists


def test_replay_rebuilds_the_latest_state_of_every_action(tmp_path: Path) -> None:
    path = tmp_path / "actions.jsonl"
    write_three(path)
    log = ActionLog.open(path)
    assert log.warnings == []
    assert {a: r.state for a, r in log.latest.items()} == {"act-1": S.STARTED, "act-2": S.PLANNED}
    assert log.latest["act-1"].migration == "mig-1"
    assert log.latest["act-1"].facts == {"share": 25.0}
    assert [r.action for r in log.open_actions()] == ["act-1", "act-2"]
    # New ids never reuse one from the file.
    assert log.new_id() == "act-3"
    log.append(record("act-1", S.COMPLETED, 9.0, migration="mig-1"))
    log.close()
    assert [r.action for r in ActionLog.open(path).open_actions()] == ["act-2"]
    assert [r.state for r in ActionLog.read(path)] == [S.PLANNED, S.STARTED, S.PLANNED, S.COMPLETED]


def test_a_corrupt_middle_line_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "actions.jsonl"
    write_three(path)
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = lines[1][:20] + "\n"  # cut short, yet followed by more records
    path.write_text("".join(lines))
    with pytest.raises(ForethoughtError, match=rf"{path.name}, line 2: corrupt record"):
        ActionLog.open(path)


def test_a_middle_line_with_a_bad_field_is_corrupt_too(tmp_path: Path) -> None:
    path = tmp_path / "actions.jsonl"
    write_three(path)
    lines = path.read_text().splitlines(keepends=True)
    lines[0] = lines[0].replace('"planned"', '"teleported"')
    path.write_text("".join(lines))
    with pytest.raises(ForethoughtError, match=r"line 1: .*'state'"):
        ActionLog.open(path)


def test_a_torn_last_line_is_reported_dropped_and_written_over(tmp_path: Path) -> None:
    path = tmp_path / "actions.jsonl"
    write_three(path)
    whole = path.read_bytes()
    torn = record("act-2", S.STARTED, 3.0, vm="vm-1").to_json().encode()[:25]
    path.write_bytes(whole + torn)  # the crash cut the fourth write short

    log = ActionLog.open(path)
    assert len(log.warnings) == 1
    assert "line 4" in log.warnings[0]
    assert "torn" in log.warnings[0]
    assert log.latest["act-2"].state is S.PLANNED  # the torn start never counted
    log.append(record("act-2", S.REJECTED, 4.0, vm="vm-1", message="limit"))
    log.close()

    text = path.read_text()
    assert text.endswith("\n")
    assert all(json.loads(line) for line in text.splitlines())  # every line whole again
    again = ActionLog.open(path)
    assert again.warnings == []
    assert again.latest["act-2"].state is S.REJECTED
    assert len(ActionLog.read(path)) == 4


def test_a_whole_last_record_without_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "actions.jsonl"
    write_three(path)
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    log = ActionLog.open(path)
    assert log.warnings == []
    assert log.latest["act-2"].state is S.PLANNED
    log.append(record("act-2", S.REJECTED, 4.0, vm="vm-1"))
    log.close()
    assert [r.state for r in ActionLog.read(path)][-2:] == [S.PLANNED, S.REJECTED]


def test_impossible_transitions_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "actions.jsonl"
    write_three(path)
    with ActionLog.open(path) as log:
        with pytest.raises(ForethoughtError, match="started cannot become planned"):
            log.append(record("act-1", S.PLANNED))
        with pytest.raises(ForethoughtError, match="act-9 starts as started, not planned"):
            log.append(record("act-9", S.STARTED))
        with pytest.raises(ForethoughtError, match="changed its VM"):
            log.append(record("act-1", S.COMPLETED, vm="vm-7"))
        with pytest.raises(ForethoughtError, match="NaN"):
            log.append(record("act-1", S.COMPLETED, facts={"seconds": float("nan")}))
    assert len(ActionLog.read(path)) == 3  # none of them was written
    # The same damage found in a file names its line.
    with path.open("a") as f:
        f.write(record("act-1", S.PLANNED, 5.0).to_json() + "\n")
        f.write(record("act-1", S.COMPLETED, 6.0).to_json() + "\n")
    with pytest.raises(ForethoughtError, match="line 4: action act-1: started cannot become"):
        ActionLog.open(path)


def test_one_writer_at_a_time_holds_the_log(tmp_path: Path) -> None:
    path = tmp_path / "actions.jsonl"
    first = ActionLog.open(path, exclusive=True)
    assert path.exists()  # the lock creates the file: the second writer finds it held
    with pytest.raises(ForethoughtError, match=r"actions\.jsonl: in use by another run"):
        ActionLog.open(path, exclusive=True)
    reader = ActionLog.open(path, read_only=True)  # reading never waits for the lock
    first.append(record("act-1", S.PLANNED))
    first.close()
    with ActionLog.open(path, exclusive=True) as second:  # released by close
        second.append(record("act-1", S.STARTED, 1.0, migration="mig-1"))
    assert [r.state for r in ActionLog.read(path)] == [S.PLANNED, S.STARTED]
    assert reader.latest == {}  # what it replayed when opened


def test_a_read_only_log_refuses_every_append(tmp_path: Path) -> None:
    path = tmp_path / "actions.jsonl"
    write_three(path)
    before = path.read_bytes()
    log = ActionLog.open(path, read_only=True)
    assert [r.action for r in log.open_actions()] == ["act-1", "act-2"]
    with pytest.raises(ForethoughtError, match="opened read only: act-2 was not logged"):
        log.append(record("act-2", S.REJECTED, 3.0, vm="vm-1"))
    assert path.read_bytes() == before
    with pytest.raises(ForethoughtError, match="takes no lock"):
        ActionLog.open(path, read_only=True, exclusive=True)


@pytest.mark.parametrize("exclusive", [False, True])
def test_a_log_that_is_not_a_regular_file_is_refused(tmp_path: Path, exclusive: bool) -> None:
    with pytest.raises(ForethoughtError, match="not a regular file"):
        ActionLog.open(tmp_path, exclusive=exclusive)  # a directory
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ForethoughtError, match="not a regular file"):
        ActionLog.open(fifo, exclusive=exclusive)  # would block the replay forever
