"""The long format: round trips through CSV and Parquet, units, timestamps and bad records."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from forethought.core.errors import ForethoughtError, TraceError
from forethought.core.resources import Resource, Unit
from forethought.telemetry.readers.bitbrains import read_bitbrains
from forethought.telemetry.readers.longformat import (
    looks_like_long,
    read_long,
    read_long_csv,
    read_long_parquet,
    write_long_csv,
    write_long_parquet,
)
from forethought.telemetry.readers.planetlab import read_planetlab
from forethought.telemetry.series import Telemetry

T0 = 1_375_308_000


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def assert_same_samples(a: Telemetry, b: Telemetry) -> None:
    assert a.vm_ids == b.vm_ids
    assert a.resources == b.resources
    assert a.units == b.units
    assert (a.start, a.step_seconds) == (b.start, b.step_seconds)
    assert np.array_equal(a.mask, b.mask)
    assert np.array_equal(a.values[a.mask], b.values[b.mask])  # exact: repr round-trips


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", ["trace.csv", "trace.csv.gz"])
def test_csv_round_trip_of_a_bitbrains_trace(fixtures_dir: Path, tmp_path: Path, name: str) -> None:
    original = read_bitbrains(fixtures_dir / "bitbrains")
    write_long_csv(original, tmp_path / name)
    again = read_long(tmp_path / name)
    assert_same_samples(original, again)
    # The trace was already on its grid: nothing merged, the same gaps found again.
    assert again.repairs.duplicates_merged == 0
    assert again.repairs.gaps == original.repairs.gaps == 12
    assert "step inferred as 300 s" in again.repairs.notes[0]
    assert not any("assumed" in note for note in again.repairs.notes)  # units were written
    assert again.capacity[:, 0].tolist() == [100.0] * 3  # percent: capacity 100 by definition
    assert np.isnan(again.capacity[:, 1:]).all()  # the long format carries no capacity


def test_csv_round_trip_of_a_planetlab_trace(fixtures_dir: Path, tmp_path: Path) -> None:
    original = read_planetlab(fixtures_dir / "planetlab")
    write_long_csv(original, tmp_path / "day.csv")
    text = (tmp_path / "day.csv").read_text().splitlines()
    assert text[0] == "vm,timestamp,resource,value,unit"
    assert text[1] == "146-179_surfsnel_dsl_internl_net_colostate_557,0,cpu,24.0,percent"
    assert_same_samples(original, read_long_csv(tmp_path / "day.csv", step_seconds=300))


def test_parquet_round_trip(fixtures_dir: Path, tmp_path: Path) -> None:
    original = read_bitbrains(fixtures_dir / "bitbrains")
    write_long_parquet(original, tmp_path / "trace.parquet")
    table = pq.read_table(tmp_path / "trace.parquet")
    assert table.column_names == ["vm", "timestamp", "resource", "value", "unit"]
    assert_same_samples(original, read_long(tmp_path / "trace.parquet"))
    assert_same_samples(original, read_long_parquet(tmp_path / "trace.parquet"))


def test_parquet_with_arrow_timestamps_and_no_unit(tmp_path: Path) -> None:
    table = pa.table(
        {
            "VM": ["a", "a", "b"],
            "timestamp": pa.array([T0 * 1000, (T0 + 60) * 1000, T0 * 1000], pa.timestamp("ms")),
            "resource": ["cpu", "cpu", "memory"],
            "value": pa.array([1, 2, 3], pa.int32()),
        }
    )
    pq.write_table(table, tmp_path / "x.pq")
    trace = read_long(tmp_path / "x.pq")
    assert trace.vm_ids == ("a", "b")
    assert trace.resources == (Resource.CPU, Resource.MEMORY)
    assert trace.units == (Unit.PERCENT, Unit.KB)
    assert (trace.start, trace.step_seconds) == (T0, 60)
    assert trace.values[0, 0].tolist() == [1.0, 2.0]
    assert any(
        "assumed default units: cpu in percent, memory in KB" in n for n in trace.repairs.notes
    )
    assert any("read as UTC" in n for n in trace.repairs.notes)


@pytest.mark.parametrize("zone", [None, "UTC"])
def test_parquet_with_nanosecond_timestamps_as_pandas_writes_them(
    tmp_path: Path, zone: str | None
) -> None:
    # Nanoseconds since 1970 pass 2**53, which a checked cast to float refuses.
    ns = [T0 * 10**9, (T0 + 300) * 10**9]
    table = pa.table(
        {
            "vm": ["a", "a"],
            "timestamp": pa.array(ns, pa.timestamp("ns", tz=zone)),
            "resource": ["cpu", "cpu"],
            "value": pa.array([10, 20], pa.int64()),
        }
    )
    pq.write_table(table, tmp_path / "x.parquet")
    trace = read_long(tmp_path / "x.parquet")
    assert (trace.start, trace.step_seconds) == (T0, 300)
    assert trace.values[0, 0].tolist() == [10.0, 20.0]


def test_parquet_integers_beyond_a_float_are_judged_not_crashed_on(tmp_path: Path) -> None:
    table = pa.table(
        {
            "vm": ["a"],
            "timestamp": pa.array([T0 * 10**9], pa.int64()),  # nanoseconds, unmarked
            "resource": ["cpu"],
            "value": pa.array([2**63 - 1], pa.int64()),
        }
    )
    pq.write_table(table, tmp_path / "x.parquet")
    with pytest.raises(TraceError, match="milliseconds, microseconds or nanoseconds"):
        read_long(tmp_path / "x.parquet")


def test_parquet_bad_rows_are_named_by_row(tmp_path: Path) -> None:
    table = pa.table(
        {
            "vm": ["a", "a", "a", "a"],
            "timestamp": [T0, T0 + 300, T0 + 600, T0 + 900],
            "resource": ["cpu", "cpu", "disk", "cpu"],
            "value": pa.array([1.0, None, 3.0, 4.0]),
        }
    )
    pq.write_table(table, tmp_path / "x.parquet")
    with pytest.raises(TraceError, match="value: missing or non-finite") as caught:
        read_long(tmp_path / "x.parquet")
    assert caught.value.line == 2
    trace = read_long(tmp_path / "x.parquet", skip_bad=True, step_seconds=300)
    assert [(s.line, s.reason.split(":")[0]) for s in trace.repairs.skipped] == [
        (2, "value"),
        (3, "resource"),
    ]
    assert trace.mask[0, 0].tolist() == [True, False, False, True]


def test_parquet_without_a_required_column(tmp_path: Path) -> None:
    pq.write_table(pa.table({"vm": ["a"], "value": [1.0]}), tmp_path / "x.parquet")
    with pytest.raises(TraceError, match="missing timestamp, resource") as caught:
        read_long(tmp_path / "x.parquet")
    assert caught.value.line is None


def test_parquet_without_pyarrow_says_how_to_install(
    tmp_path: Path, fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "x.parquet").write_bytes(b"PAR1")
    trace = read_planetlab(fixtures_dir / "planetlab")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ForethoughtError, match=r"pip install 'forethought\[parquet\]'"):
        read_long(tmp_path / "x.parquet")
    with pytest.raises(ForethoughtError, match=r"pip install 'forethought\[parquet\]'"):
        write_long_parquet(trace, tmp_path / "y.parquet")


def test_a_file_that_is_not_parquet(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_text("vm,timestamp,resource,value\n")
    with pytest.raises(TraceError, match="not a readable Parquet file"):
        read_long(tmp_path / "x.parquet")


# ----------------------------------------------------------------------- format details


def test_units_are_never_assumed_silently(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "x.csv",
        ["vm,timestamp,resource,value", f"a,{T0},net_tx,1", f"a,{T0 + 300},net_tx,2"],
    )
    trace = read_long(path)
    assert trace.units == (Unit.KB_PER_S,)
    assert "the file has no unit column; assumed default units: net_tx in KB/s" in (
        trace.repairs.notes
    )


def test_units_from_the_unit_column(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "x.csv",
        [
            "vm,timestamp,resource,value,unit",
            f"a,{T0},cpu,1500,mhz",  # unit names are case-insensitive
            f"a,{T0 + 300},cpu,1600,MHz",
            f"a,{T0},memory,3,MB",
        ],
    )
    trace = read_long(path)
    assert trace.units == (Unit.MHZ, Unit.MB)
    assert np.isnan(trace.capacity).all()  # MHz is not a percentage: capacity unknown
    assert trace.values[0, 0].tolist() == [1500.0, 1600.0]  # not clipped at 100
    assert not any("assumed" in note for note in trace.repairs.notes)


def test_iso_timestamps_columns_in_any_order_and_first_appearance_vm_order(
    tmp_path: Path,
) -> None:
    path = write_csv(
        tmp_path / "x.csv",
        [
            "Value, Resource ,VM,Timestamp",
            "1,memory,zeta,2013-08-01T00:00:00Z",
            "2,cpu,alpha,2013-08-01T00:05:00+00:00",
            "3,cpu,zeta,2013-08-01T02:00:00+02:00",
            "4,cpu,zeta,2013-08-01 00:10:00",
        ],
    )
    trace = read_long(path)
    assert trace.vm_ids == ("zeta", "alpha")
    assert trace.resources == (Resource.CPU, Resource.MEMORY)
    start = 1_375_315_200  # 2013-08-01T00:00:00Z
    assert (trace.start, trace.step_seconds) == (start, 600)  # inferred from zeta's cpu
    assert trace.values[0, 0].tolist() == [3.0, 4.0]
    assert "timestamps without a time zone were read as UTC" in trace.repairs.notes


def test_step_given_merges_and_counts_like_bitbrains(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "x.csv",
        ["vm,timestamp,resource,value"]
        + [f"a,{T0 + 60 * i},cpu,{i}" for i in range(10)]
        + [f"a,{T0 + 60 * i},memory,{i}" for i in range(10)]
        + [f"a,{T0 + 3000},cpu,7", f"a,{T0 + 3000},cpu,9"],
    )
    inferred = read_long(path)
    assert inferred.step_seconds == 60
    trace = read_long(path, step_seconds=300)
    cpu = trace.values[0, 0]
    assert cpu[:2].tolist() == [2.0, 7.0]  # means of 0..4 and 5..9
    assert cpu[10] == 8.0  # mean of the two samples at 3000 s
    assert trace.mask[0, 0].tolist() == [True, True] + [False] * 8 + [True]
    # Per VM, a slot holds as many samples as its busiest resource: 4 + 4 + 1 merged.
    assert trace.repairs.duplicates_merged == 9
    assert trace.repairs.gaps == 8  # slots 2 to 9 hold nothing for VM a
    # Exact duplicates that disagree are averaged as Bitbrains' are, and named: which
    # lines to look at, not a mean that passes unnoticed.
    assert (
        "(1 with an exact duplicate timestamp; 1 disagree, the first at lines 22 and 23 "
        "(7 and 9))" in trace.repairs.notes[-1]
    )


def test_percentages_above_100_are_clipped(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "x.csv",
        ["vm,timestamp,resource,value", f"a,{T0},cpu,120", f"a,{T0 + 300},cpu,5"],
    )
    trace = read_long(path)
    assert trace.values[0, 0].tolist() == [100.0, 5.0]
    assert trace.repairs.clipped == 1


def test_the_step_cannot_be_inferred_from_one_sample(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", ["vm,timestamp,resource,value", f"a,{T0},cpu,1"])
    with pytest.raises(TraceError, match="at least two samples of one VM and resource"):
        read_long(path)
    assert read_long(path, step_seconds=300).values.shape == (1, 1, 1)
    with pytest.raises(ForethoughtError, match="positive"):
        read_long(path, step_seconds=0)


def test_a_zero_timestamp_among_few_samples_is_refused_not_spread_over_decades(
    tmp_path: Path,
) -> None:
    header = "vm,timestamp,resource,value"
    # Three samples: the inferred step would be 21 years, merging the two real ones.
    three = write_csv(
        tmp_path / "3.csv", [header, "a,0,cpu,10", f"a,{T0},cpu,20", f"a,{T0 + 300},cpu,30"]
    )
    with pytest.raises(TraceError, match=r"over a week: a timestamp is probably wrong") as err:
        read_long(three)
    assert "earliest at line 2" in str(err.value)
    # Four: a 300 s grid of 4.6 million slots for four samples (and a hang downstream).
    rows = [header, "a,0,cpu,10", *(f"a,{T0 + 300 * k},cpu,20" for k in range(3))]
    with pytest.raises(TraceError, match=r"but there are only 4: a timestamp is probably wrong"):
        read_long(write_csv(tmp_path / "4.csv", rows))


def test_detection(tmp_path: Path, fixtures_dir: Path) -> None:
    good = write_csv(tmp_path / "x.csv", ["vm,timestamp,resource,value,unit"])
    assert looks_like_long(good)
    assert looks_like_long(write_csv(tmp_path / "y.txt", ["timestamp,vm,value,resource"]))
    assert not looks_like_long(write_csv(tmp_path / "z.csv", ["vm,timestamp,value"]))
    assert not looks_like_long(fixtures_dir / "bitbrains" / "1.csv")
    assert not looks_like_long(tmp_path)
    pq.write_table(pa.table({"vm": ["a"]}), tmp_path / "t.parquet")
    assert looks_like_long(tmp_path / "t.parquet")


# ------------------------------------------------------------------------------ bad input

HEADER = "vm,timestamp,resource,value,unit"
BAD_RECORDS: dict[str, tuple[str, str]] = {
    "unknown resource": ("a,{t},gpu,1,percent", "resource: unknown 'gpu'"),
    "non-numeric value": ("a,{t},cpu,lots,percent", "value: not a number: 'lots'"),
    "empty value": ("a,{t},cpu,,percent", "value: not a number: ''"),
    "underscore value": ("a,{t},cpu,1_0,percent", "value: not a number: '1_0'"),
    "other-script value": ("a,{t},cpu,\u0663,percent", "value: not a number: '\u0663'"),
    "underscore timestamp": ("a,1_{t},cpu,1,percent", "timestamp: not Unix seconds or ISO-8601"),
    "negative value": ("a,{t},cpu,-1,percent", "value: negative (-1)"),
    "nan": ("a,{t},cpu,nan,percent", "value: missing or non-finite ('nan')"),
    "inf": ("a,{t},cpu,inf,percent", "value: missing or non-finite ('inf')"),
    "too few fields": ("a,{t},cpu,1", "expected 5 comma-separated fields, found 4"),
    "too many fields": ("a,{t},cpu,1,percent,x", "expected 5 comma-separated fields, found 6"),
    "bad timestamp": ("a,yesterday,cpu,1,percent", "timestamp: not Unix seconds or ISO-8601"),
    "negative timestamp": ("a,-5,cpu,1,percent", "timestamp: negative"),
    "stray timestamp": ("a,7,cpu,1,percent", "timestamp: 7 lies far outside the trace's"),
    "millisecond timestamp": (
        "a,{t}000,cpu,1,percent",
        f"timestamp: {T0 + 600}000 is after the year 5000 as Unix seconds: milliseconds",
    ),
    "empty vm": (",{t},cpu,1,percent", "vm: empty VM id"),
    "unknown unit": ("a,{t},cpu,1,furlongs", "unit: unknown 'furlongs'"),
    "missing unit": ("a,{t},cpu,1,", "unit: missing"),
    "missing resource": ("a,{t}, ,1,percent", "resource: missing"),
    "inconsistent unit": (
        "a,{t},cpu,1,MHz",
        "unit: MHz for cpu, which the record at line 2 gives in percent",
    ),
}


def bad_file(tmp_path: Path, case: str) -> Path:
    """Valid records on lines 2-3 and 5-6, the bad one on line 4."""
    template, _ = BAD_RECORDS[case]
    lines = [HEADER] + [f"a,{T0 + 300 * i},cpu,{i},percent" for i in range(5)]
    lines[3] = template.format(t=T0 + 600)
    return write_csv(tmp_path / "bad.csv", lines)


@pytest.mark.parametrize("case", sorted(BAD_RECORDS))
def test_a_bad_record_names_file_and_line(tmp_path: Path, case: str) -> None:
    path = bad_file(tmp_path, case)
    with pytest.raises(TraceError) as caught:
        read_long(path)
    assert (caught.value.path, caught.value.line) == (str(path), 4)
    assert BAD_RECORDS[case][1] in caught.value.reason


@pytest.mark.parametrize("case", sorted(BAD_RECORDS))
def test_a_bad_record_is_skipped_and_listed(tmp_path: Path, case: str) -> None:
    path = bad_file(tmp_path, case)
    trace = read_long(path, skip_bad=True, step_seconds=300)
    [skipped] = trace.repairs.skipped
    assert (skipped.path, skipped.line) == (str(path), 4)
    assert BAD_RECORDS[case][1] in skipped.reason
    assert trace.vm_ids == ("a",)
    assert trace.mask[0, 0].tolist() == [True, True, False, True, True]
    assert trace.repairs.gaps == 1


def test_a_file_in_milliseconds_is_refused_at_its_first_record(tmp_path: Path) -> None:
    lines = [HEADER] + [f"a,{(T0 + 300 * i) * 1000},cpu,{i},percent" for i in range(5)]
    path = write_csv(tmp_path / "ms.csv", lines)
    with pytest.raises(TraceError, match="milliseconds, microseconds or nanoseconds") as caught:
        read_long(path)
    assert caught.value.line == 2


def test_a_grid_too_long_names_the_earliest_and_latest_lines(tmp_path: Path) -> None:
    # Two halves decades apart: neither half is stray, but no grid of 300 s spans both.
    far = T0 + 6_000_000_000
    stamps = [T0, T0 + 300, far, far + 300]
    lines = [HEADER] + [f"a,{t},cpu,1,percent" for t in stamps]
    path = write_csv(tmp_path / "split.csv", lines)
    with pytest.raises(TraceError, match=r"earliest sample at line 2, latest at line 5"):
        read_long(path)


def test_quoted_fields_and_blank_lines_keep_line_numbers_right(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "x.csv",
        [
            'vm,timestamp,resource,value,"unit"',
            f'"web, 1",{T0},cpu,1,percent',
            "",
            f'"web, 1",{T0 + 300},cpu,2,percent',
            f'"say ""hi""",{T0 + 300},cpu,oops,percent',
        ],
    )
    with pytest.raises(TraceError, match="value: not a number: 'oops'") as caught:
        read_long(path)
    assert caught.value.line == 5
    trace = read_long(path, skip_bad=True)
    assert trace.vm_ids == ("web, 1",)
    assert trace.values[0, 0].tolist() == [1.0, 2.0]


def test_crlf_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"vm,timestamp,resource,value\r\na,0,cpu,1\r\na,300,cpu,x\r\n")
    with pytest.raises(TraceError, match="not a number: 'x'") as caught:
        read_long(path)
    assert caught.value.line == 3


def test_the_earliest_bad_line_is_reported_whatever_its_kind(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "x.csv",
        [HEADER, f"a,{T0},cpu,1,percent", f"a,{T0},cpu", f"a,{T0},cpu,-1,percent"],
    )
    with pytest.raises(TraceError, match="found 3") as caught:
        read_long(path)
    assert caught.value.line == 3
    path = write_csv(
        tmp_path / "y.csv",
        [HEADER, f"a,{T0},cpu,1,percent", f"a,{T0},cpu,-1,percent", f"a,{T0},cpu"],
    )
    with pytest.raises(TraceError, match="negative") as caught:
        read_long(path)
    assert caught.value.line == 3


BAD_FILES: dict[str, tuple[str, str, int | None]] = {
    "empty": ("", "empty file", None),
    "header only": ("vm,timestamp,resource,value\n", "header only", None),
    "wrong header": ("vm,time,resource,value,colour\n", "missing timestamp; unknown 'time'", 1),
    "repeated column": ("vm,timestamp,resource,value,vm\n", "repeated vm", 1),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_is_an_error_even_when_skipping(tmp_path: Path, case: str) -> None:
    content, reason, line = BAD_FILES[case]
    path = tmp_path / "x.csv"
    path.write_text(content)
    for skip_bad in (False, True):
        with pytest.raises(TraceError) as caught:
            read_long(path, skip_bad=skip_bad)
        assert (caught.value.path, caught.value.line) == (str(path), line)
        assert reason in caught.value.reason


def test_only_bad_records_is_an_error_when_skipping(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", ["vm,timestamp,resource,value", f"a,{T0},gpu,1"])
    with pytest.raises(TraceError, match="no valid record left"):
        read_long(path, skip_bad=True)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no such file"):
        read_long(tmp_path / "nope.csv")


def test_a_value_beyond_any_plausible_reading_is_a_bad_record(tmp_path: Path) -> None:
    rows = ["vm,timestamp,resource,value,unit"]
    rows += [f"a,{T0 + 300 * k},disk_read,{4e38 if k == 3 else 10},KB/s" for k in range(6)]
    path = write_csv(tmp_path / "x.csv", rows)
    with pytest.raises(TraceError, match=r"line 5: value: 4e\+38 is beyond any plausible"):
        read_long(path)
    assert read_long(path, skip_bad=True).repairs.skipped[0].line == 5


def test_an_unterminated_quote_names_where_it_opens_even_with_skip_bad(tmp_path: Path) -> None:
    rows = ["vm,timestamp,resource,value"]
    for vm in "ab":
        rows += [f"{vm},{T0 + 300 * k},cpu,10" for k in range(20)]
    rows[11] = '"' + rows[11]  # line 12: the quote swallows every line after it
    path = write_csv(tmp_path / "x.csv", rows)
    for skip_bad in (False, True):  # skipping it would silently drop all of VM b
        with pytest.raises(TraceError, match="runs to line 41") as caught:
            read_long(path, skip_bad=skip_bad)
        assert caught.value.line == 12
    # A quoted field on one line is still a field.
    rows[11] = rows[11].replace('"a', '"a"', 1)
    assert read_long(write_csv(tmp_path / "y.csv", rows)).vm_ids == ("a", "b")


def test_a_nul_byte_is_refused_not_dropped_from_a_vm_name(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"vm,timestamp,resource,value\na,1375308000,cpu,10\na\x00,1375308300,cpu,90\n")
    with pytest.raises(TraceError, match="a NUL byte: binary data, not text") as caught:
        read_long(path)
    assert caught.value.line == 3


def test_old_mac_line_endings_read_as_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(f"vm,timestamp,resource,value\ra,{T0},cpu,10\ra,{T0 + 300},cpu,20\r".encode())
    assert read_long(path).values[0, 0].tolist() == [10.0, 20.0]


def test_a_trace_almost_all_gaps_is_warned_about(tmp_path: Path) -> None:
    # Two VMs seen for ten minutes each, eleven weeks apart: 20,002 five-minute steps.
    path = write_csv(
        tmp_path / "x.csv",
        [
            "vm,timestamp,resource,value",
            f"a,{T0},cpu,1",
            f"a,{T0 + 300},cpu,2",
            f"b,{T0 + 300 * 20_000},cpu,1",
            f"b,{T0 + 300 * 20_001},cpu,2",
        ],
    )
    trace = read_long(path)
    assert trace.values.shape[2] == 20_002
    [warning] = trace.repairs.warnings
    assert "only 0.01% of the 2 VM(s) x 20,002 step(s) hold a sample" in warning
    dense = write_csv(
        tmp_path / "y.csv", ["vm,timestamp,resource,value", f"a,{T0},cpu,1", f"a,{T0 + 300},cpu,2"]
    )
    assert read_long(dense).repairs.warnings == []
