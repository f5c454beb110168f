"""The PlanetLab reader on three real VM files, one with a space in its name."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from forethought.core.errors import TraceError
from forethought.core.resources import Resource, Unit
from forethought.telemetry.readers.planetlab import looks_like_planetlab, read_planetlab

SPACED = "aladdin_planetlab_extranet_uni-passau_de_ rnp_dcc_ufjf"


@pytest.fixture
def day(fixtures_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the three fixture files."""
    copy = tmp_path / "day"
    shutil.copytree(fixtures_dir / "planetlab", copy)
    return copy


def test_reads_sorted_files_including_a_name_with_a_space(fixtures_dir: Path) -> None:
    trace = read_planetlab(fixtures_dir / "planetlab")
    assert trace.vm_ids == (
        "146-179_surfsnel_dsl_internl_net_colostate_557",
        SPACED,
        "vn5_cse_wustl_edu_uw_oneswarm",
    )
    assert trace.resources == (Resource.CPU,)
    assert trace.units == (Unit.PERCENT,)
    assert trace.values.shape == (3, 1, 288)
    assert trace.mask.all()
    assert trace.step_seconds == 300
    assert trace.values[1, 0, :2].tolist() == [62.0, 76.0]
    assert trace.capacity.tolist() == [[100.0], [100.0], [100.0]]
    assert trace.repairs.to_dict()["skipped"] == []


def test_detection(fixtures_dir: Path, tmp_path: Path) -> None:
    assert looks_like_planetlab(fixtures_dir / "planetlab")
    assert not looks_like_planetlab(fixtures_dir / "bitbrains")
    assert not looks_like_planetlab(tmp_path)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("abc", "not a number"),
        ("-3", "negative"),
        ("nan", "non-finite"),
        ("inf", "non-finite"),
        ("1_0", "not a number"),  # Python's float() would read 10
        ("\u0663", "not a number"),  # and 3 from an Arabic-Indic digit
    ],
)
def test_a_bad_sample_names_file_and_line_or_is_skipped(day: Path, token: str, reason: str) -> None:
    path = day / SPACED
    lines = path.read_text().splitlines()
    lines[9] = token
    path.write_text("\n".join(lines) + "\n")

    with pytest.raises(TraceError, match=reason) as caught:
        read_planetlab(day)
    assert caught.value.path == str(path)
    assert caught.value.line == 10

    trace = read_planetlab(day, skip_bad=True)
    [skipped] = trace.repairs.skipped
    assert (skipped.path, skipped.line) == (str(path), 10)
    assert reason in skipped.reason
    assert not trace.mask[1, 0, 9]
    assert np.isnan(trace.values[1, 0, 9])
    assert trace.mask.sum() == 3 * 288 - 1


def test_an_empty_file_is_an_error_or_skipped(day: Path) -> None:
    (day / SPACED).write_text("")
    with pytest.raises(TraceError, match="empty file") as caught:
        read_planetlab(day)
    assert caught.value.path == str(day / SPACED)
    trace = read_planetlab(day, skip_bad=True)
    assert SPACED not in trace.vm_ids
    assert trace.repairs.skipped[0].reason == "empty file"


def test_a_file_with_no_valid_sample_is_dropped_not_kept_as_an_empty_vm(day: Path) -> None:
    (day / "README").write_text("This is a readme\nhello\n", encoding="utf-8")
    with pytest.raises(TraceError, match="line 1: not a number"):
        read_planetlab(day)
    trace = read_planetlab(day, skip_bad=True)
    assert "README" not in trace.vm_ids
    assert trace.n_vms == 3
    assert [(s.line, s.reason) for s in trace.repairs.skipped][-1] == (None, "no valid sample left")


def test_a_file_that_is_not_utf8_names_its_line_or_is_skipped(day: Path) -> None:
    (day / "vm-latin").write_bytes(b"10\n20\ncaf\xe9\n")
    with pytest.raises(TraceError, match="not UTF-8") as caught:
        read_planetlab(day)
    assert caught.value.line == 3
    trace = read_planetlab(day, skip_bad=True)
    assert "vm-latin" not in trace.vm_ids
    assert trace.repairs.skipped[0].line == 3


def test_byte_order_marks_are_dropped_as_the_other_readers_do(day: Path, tmp_path: Path) -> None:
    marked = tmp_path / "marked"
    marked.mkdir()
    for path in day.iterdir():
        (marked / path.name).write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert looks_like_planetlab(marked)
    np.testing.assert_array_equal(read_planetlab(marked).values, read_planetlab(day).values)


def test_entries_that_are_not_files_are_named_in_a_note(day: Path) -> None:
    (day / "dangling").symlink_to(day / "nowhere")
    (day / "sub").mkdir()
    trace = read_planetlab(day)
    assert trace.n_vms == 3
    assert "ignored 2 entries that are not a readable file: dangling, sub" in trace.repairs.notes


def test_values_above_100_are_clipped_and_named_by_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "vm-a").write_text("10\n150\n20\n")
    trace = read_planetlab(tmp_path)
    assert trace.values[0, 0].tolist() == [10.0, 100.0, 20.0]
    assert trace.repairs.clipped == 1
    assert f"{tmp_path / 'vm-a'}, line 2: 150 % clipped to 100" in trace.repairs.notes
