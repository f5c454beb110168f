"""The Bitbrains reader on three real VMs cut to 600 rows, and on every kind of bad input.

Fixtures (from GWA-T-12 Rnd, August 2013): ``1.csv`` (plain, one multi-slot gap),
``20.csv.gz`` (rows with zero provisioned memory, three rows per timestamp from line 119) and
``193.csv.gz`` (156 rows with CPU above 100 %).
"""

from __future__ import annotations

import gzip
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from forethought.core.errors import ForethoughtError, TraceError
from forethought.core.resources import Resource, Unit
from forethought.telemetry.readers.bitbrains import (
    COLUMNS,
    looks_like_bitbrains,
    read_bitbrains,
)

HEADER = ";\t".join(COLUMNS)
START = 1_375_308_000  # the fixtures' first sample, 1375308176, floored to 300 s


def row(ts: float, cpu: float = 10.0, mem_prov: float = 1000.0, mem: float = 500.0) -> str:
    return f"{ts};\t2;\t5000.0;\t500.0;\t{cpu};\t{mem_prov};\t{mem};\t0.0;\t1.0;\t2.0;\t3.0"


def write_vm(path: Path, lines: list[str]) -> Path:
    text = "\n".join(lines) + "\n"
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def small_vm(path: Path, rows: int = 9) -> Path:
    """A valid VM file: header on line 1, rows on lines 2 to rows + 1, 300 s apart."""
    return write_vm(path, [HEADER] + [row(START + 300 * i) for i in range(rows)])


@pytest.fixture
def trace_dir(fixtures_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "2013-8"
    shutil.copytree(fixtures_dir / "bitbrains", copy)
    return copy


# ------------------------------------------------------------------------- real fixtures


def test_reads_the_fixture_directory(fixtures_dir: Path) -> None:
    trace = read_bitbrains(fixtures_dir / "bitbrains")
    assert trace.vm_ids == ("1", "20", "193")  # numeric order, not "1", "193", "20"
    assert trace.resources == (
        Resource.CPU,
        Resource.MEMORY,
        Resource.DISK_READ,
        Resource.DISK_WRITE,
        Resource.NET_RX,
        Resource.NET_TX,
    )
    assert trace.units == (
        Unit.PERCENT,
        Unit.KB,
        Unit.KB_PER_S,
        Unit.KB_PER_S,
        Unit.KB_PER_S,
        Unit.KB_PER_S,
    )
    assert trace.step_seconds == 300
    assert trace.start == START
    # 1.csv's last sample, 1375489775, is 605.9 steps after the start.
    assert trace.values.shape == (3, 6, 606)
    # The first row of 1.csv, untouched: it is alone in its slot.
    assert trace.values[0, :, 0].tolist() == [12.766666666666667, 1308620.0, 0.0, 1.0, 11.0, 27.2]
    assert np.isnan(trace.values[~trace.mask]).all()
    assert not np.isnan(trace.values[trace.mask]).any()


def test_capacity_is_100_for_cpu_and_the_median_provisioned_memory(fixtures_dir: Path) -> None:
    trace = read_bitbrains(fixtures_dir / "bitbrains")
    assert trace.capacity[:, 0].tolist() == [100.0, 100.0, 100.0]
    # 20.csv.gz: 482 of its 600 rows report zero provisioned memory; they do not count.
    assert trace.capacity[:, 1].tolist() == [8_388_608.0, 4_110_336.0, 16_347_136.0]
    assert np.isnan(trace.capacity[:, 2:]).all()


def test_repair_report_of_the_fixtures(fixtures_dir: Path) -> None:
    trace = read_bitbrains(fixtures_dir / "bitbrains")
    report = trace.repairs
    assert report.clipped == 156  # all CPU values of 193.csv.gz above 100 %
    assert report.duplicates_merged == 323  # 20.csv.gz: 187 exact repeats and 136 near ones
    assert report.gaps == 12  # six empty slots in 1.csv and six in 193.csv.gz
    assert report.skipped == []
    summary = report.notes[0]
    assert "CPU above 100 % clipped in 1 VM(s) (156 in total; most in VM 193: 156)" in summary
    assert "samples sharing a slot averaged in 1 VM(s) (323 in total" in summary
    assert "exact duplicate timestamps in 1 VM(s) (187 in total" in summary
    assert "empty slots (gaps) in 2 VM(s) (12 in total" in summary
    assert "zero provisioned memory in 1 VM(s) (482 in total" in report.notes[1]


def test_cpu_above_100_is_clipped(fixtures_dir: Path) -> None:
    trace = read_bitbrains(fixtures_dir / "bitbrains")
    cpu, mask = trace.series(Resource.CPU)
    assert cpu[mask].max() == 100.0
    assert np.count_nonzero(cpu[2][mask[2]] == 100.0) == 156


def test_rows_sharing_a_slot_are_averaged(fixtures_dir: Path) -> None:
    trace = read_bitbrains(fixtures_dir / "bitbrains")
    # Lines 119-121 of 20.csv.gz share timestamp 1375342979 (slot 116): one real row with
    # 272627.6 KB used and two all-zero rows. The slot holds their mean, as reported.
    memory, _ = trace.series(Resource.MEMORY)
    assert memory[1, 116] == pytest.approx(272_627.6 / 3)


def test_slots_outside_a_vms_samples_are_missing_but_not_gaps(fixtures_dir: Path) -> None:
    trace = read_bitbrains(fixtures_dir / "bitbrains")
    last_slot = (1_375_390_984 - START) // 300  # 20.csv.gz's last sample
    assert trace.mask[1, :, last_slot].all()
    assert not trace.mask[1, :, last_slot + 1 :].any()
    single = read_bitbrains(fixtures_dir / "bitbrains" / "20.csv.gz")
    assert single.repairs.gaps == 0


def test_the_gap_in_vm_1_is_missing(fixtures_dir: Path) -> None:
    trace = read_bitbrains(fixtures_dir / "bitbrains")
    empty = np.flatnonzero(~trace.mask[0, 0])
    assert empty.size == 6
    assert not trace.mask[0, :, empty].any()


@pytest.mark.parametrize("name", ["1.csv", "20.csv.gz"])
def test_reads_a_single_file(fixtures_dir: Path, name: str) -> None:
    trace = read_bitbrains(fixtures_dir / "bitbrains" / name)
    assert trace.vm_ids == (name.split(".")[0],)
    assert trace.values.shape[:2] == (1, 6)


def test_limit_keeps_the_first_vms(fixtures_dir: Path) -> None:
    assert read_bitbrains(fixtures_dir / "bitbrains", limit=2).vm_ids == ("1", "20")
    with pytest.raises(ForethoughtError):
        read_bitbrains(fixtures_dir / "bitbrains", limit=0)


def test_a_coarser_step(fixtures_dir: Path) -> None:
    trace = read_bitbrains(fixtures_dir / "bitbrains", step_seconds=600)
    assert trace.step_seconds == 600
    assert trace.values.shape == (3, 6, 303)


def test_detection(fixtures_dir: Path, tmp_path: Path) -> None:
    assert looks_like_bitbrains(fixtures_dir / "bitbrains")
    assert looks_like_bitbrains(fixtures_dir / "bitbrains" / "1.csv")
    assert looks_like_bitbrains(fixtures_dir / "bitbrains" / "193.csv.gz")
    assert not looks_like_bitbrains(fixtures_dir / "planetlab")
    assert not looks_like_bitbrains(tmp_path)
    other = tmp_path / "long.csv"
    other.write_text("vm,timestamp,resource,value\n")
    assert not looks_like_bitbrains(other)


# ---------------------------------------------------------------------- synthetic files


def test_files_are_sorted_by_numeric_id_then_by_name(tmp_path: Path) -> None:
    for name in ("10.csv", "b.csv", "2.csv.gz", "a.csv", "1.csv"):
        small_vm(tmp_path / name)
    (tmp_path / "README").write_text("not a VM\n")
    trace = read_bitbrains(tmp_path)
    assert trace.vm_ids == ("1", "2", "10", "a", "b")
    assert "ignored 1 file(s)" in trace.repairs.notes[-1]


def test_the_same_vm_twice_is_an_error(tmp_path: Path) -> None:
    small_vm(tmp_path / "7.csv")
    small_vm(tmp_path / "7.csv.gz")
    with pytest.raises(TraceError, match="two files"):
        read_bitbrains(tmp_path)


def test_memory_above_provisioned_is_clipped_to_it(tmp_path: Path) -> None:
    write_vm(
        tmp_path / "1.csv",
        [HEADER, row(START, mem=900.0), row(START + 300, mem=1500.0), row(START + 600)],
    )
    trace = read_bitbrains(tmp_path)
    memory, _ = trace.series(Resource.MEMORY)
    assert memory[0].tolist() == [900.0, 1000.0, 500.0]
    assert trace.repairs.clipped == 1
    assert "memory above provisioned clipped in 1 VM(s)" in trace.repairs.notes[0]


def test_exact_duplicates_and_gaps_are_counted(tmp_path: Path) -> None:
    write_vm(
        tmp_path / "1.csv",
        [
            HEADER,
            row(START, cpu=10.0),
            row(START, cpu=20.0),  # same timestamp
            row(START + 150, cpu=30.0),  # same slot
            row(START + 1200, cpu=40.0),  # slots 1, 2 and 3 are empty
        ],
    )
    trace = read_bitbrains(tmp_path)
    cpu, mask = trace.series(Resource.CPU)
    assert cpu[0, 0] == pytest.approx(20.0)
    assert mask[0].tolist() == [True, False, False, False, True]
    assert (trace.repairs.duplicates_merged, trace.repairs.gaps) == (2, 3)
    assert "exact duplicate timestamps in 1 VM(s) (1 in total" in trace.repairs.notes[0]


def test_crlf_and_blank_lines_are_tolerated(tmp_path: Path) -> None:
    lines = [HEADER, row(START), "", row(START + 300), "   ", row(START + 600), ""]
    (tmp_path / "1.csv").write_bytes("\r\n".join(lines).encode())
    trace = read_bitbrains(tmp_path)
    assert trace.mask.all()
    assert trace.n_steps == 3


def _replace_field(line: str, column: int, token: str) -> str:
    fields = line.split(";")
    fields[column] = "\t" + token
    return ";".join(fields)


BAD_ROWS: dict[str, tuple[Callable[[str], str], str]] = {
    "non-numeric": (lambda ln: _replace_field(ln, 4, "abc"), "CPU usage [%]: not a number"),
    "empty field": (lambda ln: _replace_field(ln, 6, ""), "Memory usage [KB]: not a number"),
    "too few fields": (
        lambda ln: ln.rsplit(";", 1)[0],
        "expected 11 ';'-separated fields, found 10",
    ),
    "too many fields": (lambda ln: ln + ";\t1.0", "expected 11 ';'-separated fields, found 12"),
    "negative": (lambda ln: _replace_field(ln, 6, "-5.0"), "Memory usage [KB]: negative value -5"),
    "nan": (lambda ln: _replace_field(ln, 4, "nan"), "CPU usage [%]: non-finite value 'nan'"),
    "inf": (lambda ln: _replace_field(ln, 9, "inf"), "non-finite value 'inf'"),
    "negative time": (lambda ln: _replace_field(ln, 0, "-1"), "Timestamp [ms]: negative"),
    # Python's float() reads both of these; a trace cell holding them is corrupt
    "underscore": (lambda ln: _replace_field(ln, 4, "1_0"), "CPU usage [%]: not a number"),
    "other script": (lambda ln: _replace_field(ln, 4, "\u0663"), "CPU usage [%]: not a number"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
@pytest.mark.parametrize("name", ["7.csv", "7.csv.gz"])
def test_a_bad_row_names_file_and_line(tmp_path: Path, case: str, name: str) -> None:
    mutate, reason = BAD_ROWS[case]
    lines = [HEADER] + [row(START + 300 * i) for i in range(9)]
    lines[4] = mutate(lines[4])  # line 5 of the file
    path = write_vm(tmp_path / name, lines)
    small_vm(tmp_path / "8.csv")

    with pytest.raises(TraceError) as caught:
        read_bitbrains(tmp_path)
    assert caught.value.path == str(path)
    assert caught.value.line == 5
    assert reason in caught.value.reason
    assert f"{path}, line 5: " in str(caught.value)


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_a_bad_row_is_skipped_and_listed(tmp_path: Path, case: str) -> None:
    mutate, reason = BAD_ROWS[case]
    lines = [HEADER] + [row(START + 300 * i) for i in range(9)]
    lines[4] = mutate(lines[4])
    path = write_vm(tmp_path / "7.csv", lines)

    trace = read_bitbrains(tmp_path, skip_bad=True)
    [skipped] = trace.repairs.skipped
    assert (skipped.path, skipped.line) == (str(path), 5)
    assert reason in skipped.reason
    # The row at 900 s (slot 3) is gone and shows as a gap, not as a value.
    assert trace.mask[0, 0].tolist() == [True] * 3 + [False] + [True] * 5
    assert trace.repairs.gaps == 1


BAD_FILES: dict[str, tuple[bytes, str, int | None]] = {
    "empty": (b"", "empty file", None),
    "blank": (b"\n\n", "empty file", None),
    "header only": ((HEADER + "\n").encode(), "header only", None),
    "wrong header": (b"time;cpu\n1;2\n", "not a Bitbrains header", 1),
    "misnamed column": (
        (HEADER.replace("CPU usage [%]", "CPU usage [MHZ]", 1) + "\n").encode(),
        "column 5 is 'CPU usage [MHZ]', expected 'CPU usage [%]'",
        1,
    ),
    "not utf-8": (b"\xff\xfe\x00bad", "not UTF-8", 1),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_is_an_error_or_skipped(tmp_path: Path, case: str) -> None:
    content, reason, line = BAD_FILES[case]
    bad = tmp_path / "5.csv"
    bad.write_bytes(content)
    small_vm(tmp_path / "6.csv")

    with pytest.raises(TraceError) as caught:
        read_bitbrains(tmp_path)
    assert (caught.value.path, caught.value.line) == (str(bad), line)
    assert reason in caught.value.reason

    trace = read_bitbrains(tmp_path, skip_bad=True)
    assert trace.vm_ids == ("6",)
    [skipped] = trace.repairs.skipped
    assert (skipped.path, skipped.line) == (str(bad), line)


def test_a_corrupt_gzip_file(tmp_path: Path) -> None:
    bad = tmp_path / "5.csv.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00 definitely not deflate")
    with pytest.raises(TraceError, match="not a valid gzip file") as caught:
        read_bitbrains(tmp_path)
    assert caught.value.path == str(bad)


def test_a_file_with_only_bad_rows_is_dropped_when_skipping(tmp_path: Path) -> None:
    write_vm(tmp_path / "5.csv", [HEADER, "x", "y"])
    small_vm(tmp_path / "6.csv")
    trace = read_bitbrains(tmp_path, skip_bad=True)
    assert trace.vm_ids == ("6",)
    assert [(s.line, s.reason) for s in trace.repairs.skipped][-1] == (None, "no valid row left")


def test_nothing_readable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "5.csv").write_text("")
    with pytest.raises(TraceError, match="all were skipped"):
        read_bitbrains(tmp_path, skip_bad=True)
    with pytest.raises(TraceError, match="no such file or directory"):
        read_bitbrains(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TraceError, match="holds no"):
        read_bitbrains(empty)


def test_a_millisecond_timestamp_is_refused_not_allocated(tmp_path: Path) -> None:
    write_vm(tmp_path / "1.csv", [HEADER, row(START), row(START * 1000.0)])
    with pytest.raises(TraceError, match=r"1\.csv, line 3: timestamp .* milliseconds"):
        read_bitbrains(tmp_path)


def test_a_file_in_milliseconds_is_refused_or_skipped_naming_its_lines(tmp_path: Path) -> None:
    small_vm(tmp_path / "1.csv", rows=12)
    write_vm(tmp_path / "2.csv", [HEADER] + [row((START + 300 * i) * 1000.0) for i in range(12)])
    with pytest.raises(TraceError, match=r"2\.csv, line 2: timestamp .* Unix seconds"):
        read_bitbrains(tmp_path)
    t = read_bitbrains(tmp_path, skip_bad=True)
    assert t.n_steps == 12  # the grid spans the real samples only
    assert t.vm_ids == ("1",)
    skipped = t.repairs.skipped
    assert [s.line for s in skipped] == [*range(2, 14), None]
    assert skipped[-1].reason == "no valid row left"


@pytest.mark.parametrize("bad", [1.0, 2 * START])
def test_one_stray_timestamp_names_its_line_or_is_skipped(tmp_path: Path, bad: float) -> None:
    lines = [HEADER] + [row(START + 300 * i) for i in range(40)]
    lines[5] = row(bad)  # line 6 of the file
    lines.insert(3, "")  # a blank line before it does not shift the count
    write_vm(tmp_path / "1.csv", lines)
    small_vm(tmp_path / "2.csv", rows=40)
    with pytest.raises(TraceError, match=r"1\.csv, line 7: timestamp .* corrupted timestamp"):
        read_bitbrains(tmp_path)
    t = read_bitbrains(tmp_path, skip_bad=True)
    assert t.n_steps == 40  # the grid spans the real samples, not decades
    [skipped] = t.repairs.skipped
    assert skipped.line == 7
    assert skipped.path.endswith("1.csv")


def test_vms_on_different_days_are_not_stray(tmp_path: Path) -> None:
    day = 288 * 300
    small_vm(tmp_path / "1.csv", rows=288)
    write_vm(tmp_path / "2.csv", [HEADER] + [row(START + 3 * day + 300 * i) for i in range(288)])
    t = read_bitbrains(tmp_path)
    assert t.n_steps == 4 * 288
    assert not t.repairs.skipped


# --------------------------------------------------------------------- the full month


@pytest.mark.shared
def test_reads_the_whole_month(
    shared_traces: Path, record_property: Callable[[str, object], None]
) -> None:
    began = time.perf_counter()
    trace = read_bitbrains(shared_traces / "bitbrains-rnd" / "2013-8")
    record_property("read_seconds", round(time.perf_counter() - began, 1))
    assert trace.n_vms == 500
    assert trace.vm_ids[:3] == ("1", "2", "3")
    assert 8_500 <= trace.n_steps <= 8_700
    assert trace.repairs.clipped > 0
    assert trace.repairs.duplicates_merged > 0
    assert trace.repairs.gaps > 0
    assert trace.repairs.skipped == []
    cpu, mask = trace.series(Resource.CPU)
    assert cpu[mask].max() <= 100.0
    # The fleet is lightly loaded: the median VM averages well under 10 % CPU.
    means = np.nanmean(np.where(mask, cpu, np.nan), axis=1)
    assert float(np.median(means)) < 10.0


def test_a_zero_timestamp_in_a_tiny_trace_is_refused_not_a_decades_long_grid(
    tmp_path: Path,
) -> None:
    # Two rows: the stray-timestamp range is wide enough to hold the zero itself.
    write_vm(tmp_path / "1.csv", [HEADER, row(START + 176), row(0)])
    with pytest.raises(TraceError, match="but there are only 2") as err:
        read_bitbrains(tmp_path)
    assert "earliest sample in 1.csv" in str(err.value)


def test_a_reading_beyond_any_plausible_value_is_a_bad_row(tmp_path: Path) -> None:
    huge = row(START).replace("\t0.0;", "\t1e308;", 1)  # disk read, the first 0.0 column
    write_vm(tmp_path / "1.csv", [HEADER, huge, *(row(START + 300 * i) for i in range(1, 5))])
    with pytest.raises(TraceError, match=r"line 2: Disk read throughput .* 1e.308 is beyond"):
        read_bitbrains(tmp_path)
    [skipped] = read_bitbrains(tmp_path, skip_bad=True).repairs.skipped
    assert skipped.line == 2


def test_a_vm_file_that_is_a_broken_link_or_a_directory_is_named_in_a_note(
    tmp_path: Path,
) -> None:
    small_vm(tmp_path / "1.csv")
    (tmp_path / "7.csv").symlink_to(tmp_path / "nowhere.csv")
    (tmp_path / "9.csv").mkdir()
    trace = read_bitbrains(tmp_path)
    assert trace.vm_ids == ("1",)
    assert (
        "ignored 2 entries named like a VM file but not a readable file: 7.csv, 9.csv"
        in trace.repairs.notes
    )


def test_a_stray_timestamp_after_a_skipped_row_names_its_own_line(tmp_path: Path) -> None:
    lines = [HEADER] + [row(START + 300 * i) for i in range(40)]
    lines[2] = lines[2].replace("\t10.0;", "\tabc;", 1)  # line 3: a bad CPU cell
    lines[9] = row(5.0)  # line 10: a stray timestamp
    write_vm(tmp_path / "1.csv", lines)
    small_vm(tmp_path / "2.csv", rows=40)
    skipped = read_bitbrains(tmp_path, skip_bad=True).repairs.skipped
    assert [s.line for s in skipped] == [3, 10]
    assert skipped[0].reason.startswith("CPU usage [%]: not a number")
    assert skipped[1].reason.startswith("timestamp 5 lies far outside")
