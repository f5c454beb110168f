"""Format detection and the ``load_trace`` entry point."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from forethought.core.errors import ForethoughtError, TraceError, UnknownFormatError
from forethought.core.resources import Resource
from forethought.telemetry.load import FORMATS, detect_format, load_trace
from forethought.telemetry.readers.longformat import write_long_csv, write_long_parquet
from forethought.telemetry.readers.planetlab import read_planetlab


@pytest.fixture
def long_csv(fixtures_dir: Path, tmp_path: Path) -> Path:
    path = tmp_path / "trace.csv"
    write_long_csv(read_planetlab(fixtures_dir / "planetlab"), path)
    return path


def test_formats() -> None:
    assert FORMATS == ("planetlab", "bitbrains", "long-csv", "long-parquet")


def test_detects_each_format(fixtures_dir: Path, tmp_path: Path, long_csv: Path) -> None:
    assert detect_format(fixtures_dir / "planetlab") == "planetlab"
    assert detect_format(fixtures_dir / "bitbrains") == "bitbrains"
    assert detect_format(fixtures_dir / "bitbrains" / "1.csv") == "bitbrains"
    assert detect_format(fixtures_dir / "bitbrains" / "20.csv.gz") == "bitbrains"
    assert detect_format(long_csv) == "long-csv"
    parquet = tmp_path / "trace.parquet"
    write_long_parquet(read_planetlab(fixtures_dir / "planetlab"), parquet)
    assert detect_format(parquet) == "long-parquet"
    # Content, not the name, decides: Parquet magic bytes under another name.
    renamed = tmp_path / "trace.data"
    shutil.copy(parquet, renamed)
    assert detect_format(renamed) == "long-parquet"


@pytest.mark.parametrize("kind", ["text file", "missing"])
def test_an_unknown_format_lists_the_known_ones(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "thing"
    if kind == "text file":
        target.write_text("hello,world\n")
    with pytest.raises(UnknownFormatError) as caught:
        detect_format(target)
    message = str(caught.value)
    assert str(target) in message
    assert all(name in message for name in FORMATS)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "read as long-csv: {path}: empty file: expected a header"),
        (
            b"vm,timestamp,resource,val\na,1375308000,cpu,1\n",
            "read as long-csv: {path}, line 1: not a long-format header (missing value; "
            "unknown 'val')",
        ),
        (b"Timestamp [s];\tCPU\n1;2\n", "read as bitbrains: {path}, line 1: not a Bitbrains"),
    ],
)
def test_a_csv_that_matches_no_format_gets_the_reason_of_the_one_its_name_points_at(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "trace.csv"
    path.write_bytes(content)
    with pytest.raises(UnknownFormatError) as caught:
        load_trace(path)
    assert f"{path}: cannot tell the trace format; " + reason.format(path=path) in str(caught.value)


def test_a_stray_file_in_a_day_is_named_and_skip_bad_reads_past_it(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    day = tmp_path / "day"
    shutil.copytree(fixtures_dir / "planetlab", day)
    (day / "summary.csv").write_text("a,b\n", encoding="utf-8")
    with pytest.raises(UnknownFormatError, match=r"read as planetlab: .*summary.csv, line 1"):
        load_trace(day)
    trace = load_trace(day, skip_bad=True)
    assert trace.n_vms == 3


def test_an_empty_directory_says_so(tmp_path: Path) -> None:
    with pytest.raises(UnknownFormatError, match="the directory is empty"):
        detect_format(tmp_path)


@pytest.mark.parametrize("fmt", ["planetlab", "bitbrains"])
def test_a_bad_first_file_does_not_hide_the_format(
    fixtures_dir: Path, tmp_path: Path, fmt: str
) -> None:
    day = tmp_path / fmt
    shutil.copytree(fixtures_dir / fmt, day)
    first = sorted(p for p in day.iterdir() if p.is_file())[0]
    if fmt == "bitbrains":
        first = day / "1.csv"
    first.write_text("")  # the file detection would have sniffed
    assert detect_format(day) == fmt
    with pytest.raises(TraceError, match=f"{first.name}: empty file"):
        load_trace(day)


def test_loads_each_format(fixtures_dir: Path, tmp_path: Path, long_csv: Path) -> None:
    assert load_trace(fixtures_dir / "planetlab").n_vms == 3
    bitbrains = load_trace(str(fixtures_dir / "bitbrains"))
    assert bitbrains.vm_ids == ("1", "20", "193")
    assert bitbrains.has(Resource.NET_TX)
    assert load_trace(long_csv).values.shape == (3, 1, 288)
    parquet = tmp_path / "t.parquet"
    pq.write_table(
        pa.table(
            {"vm": ["a", "a"], "timestamp": [0, 300], "resource": ["cpu"] * 2, "value": [1, 2]}
        ),
        parquet,
    )
    assert load_trace(parquet).values[0, 0].tolist() == [1.0, 2.0]


def test_limit_and_skip_bad_reach_every_reader(
    fixtures_dir: Path, tmp_path: Path, long_csv: Path
) -> None:
    assert load_trace(fixtures_dir / "bitbrains", limit=1).vm_ids == ("1",)
    assert load_trace(fixtures_dir / "planetlab", limit=2).n_vms == 2
    assert load_trace(long_csv, limit=1).n_vms == 1
    with long_csv.open("a") as handle:
        handle.write("x,600,cpu,oops,percent\n")
    with pytest.raises(TraceError, match="not a number"):
        load_trace(long_csv)
    assert len(load_trace(long_csv, skip_bad=True).repairs.skipped) == 1
    with pytest.raises(ForethoughtError, match="limit"):
        load_trace(long_csv, limit=0)


def test_the_format_argument_overrides_detection(tmp_path: Path, long_csv: Path) -> None:
    renamed = tmp_path / "7.csv"
    shutil.copy(long_csv, renamed)
    assert load_trace(renamed, "long-csv").n_vms == 3
    with pytest.raises(TraceError, match="not a Bitbrains header") as caught:
        load_trace(renamed, "bitbrains")
    assert caught.value.line == 1
    with pytest.raises(UnknownFormatError, match="known formats: planetlab"):
        load_trace(renamed, "excel")


def test_bundled_dataset() -> None:
    trace = load_trace("bundled:planetlab-20110303")
    assert trace.values.shape == (1052, 1, 288)
    assert trace.source == "bundled:planetlab-20110303"
    assert load_trace("bundled:planetlab-20110303", limit=10).n_vms == 10
    with pytest.raises(TraceError, match="no bundled dataset"):
        load_trace("bundled:nope")
    with pytest.raises(ForethoughtError, match="fixed format"):
        load_trace("bundled:planetlab-20110303", "planetlab")


def test_an_ambiguous_bitbrains_directory_is_detected_then_explained(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    shutil.copy(fixtures_dir / "bitbrains" / "1.csv", tmp_path / "1.csv")
    shutil.copy(fixtures_dir / "bitbrains" / "20.csv.gz", tmp_path / "1.csv.gz")
    assert detect_format(tmp_path) == "bitbrains"
    with pytest.raises(TraceError, match=r"VM '1' has two files \(1.csv and 1.csv.gz\)"):
        load_trace(tmp_path)


def test_a_missing_path(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no such file or directory") as caught:
        load_trace(tmp_path / "nowhere")
    assert caught.value.path == str(tmp_path / "nowhere")


@pytest.mark.shared
def test_detects_and_reads_the_real_traces(shared_traces: Path) -> None:
    day = shared_traces / "planetlab" / "20110303"
    assert detect_format(day) == "planetlab"
    assert detect_format(shared_traces / "bitbrains-rnd" / "2013-8") == "bitbrains"
    # The bundled dataset is this very day.
    real, bundled = load_trace(day), load_trace("bundled:planetlab-20110303")
    assert real.vm_ids == bundled.vm_ids
    assert np.array_equal(real.values, bundled.values)
    assert sum(" " in vm for vm in real.vm_ids) > 0


def test_a_long_csv_with_a_bad_byte_below_its_header_is_detected_and_the_line_named(
    tmp_path: Path,
) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"vm,timestamp,resource,value\na,1300000000,cpu,5\nb\xe9,1300000300,cpu,6\n")
    assert detect_format(path) == "long-csv"
    with pytest.raises(TraceError) as caught:
        load_trace(path)
    assert caught.value.line == 3
    assert str(caught.value).startswith(f"{path}, line 3: not UTF-8 text")
