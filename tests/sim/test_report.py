"""The HTML report: one self-contained file with the metrics table and inline SVG figures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from forethought.core.errors import ForethoughtError
from forethought.sim import report
from forethought.sim.metrics import SimResult

from .conftest import run, utilisation

TITLE = "Day <3> & night"


def external_references(page: str) -> list[str]:
    """Every reference the page would fetch when opened: scripts, links, images, CSS urls.

    Inline SVG may name XML namespaces (``xmlns="http://..."``); those are identifiers,
    not fetched, so only src/href attributes, link and script tags, and CSS url() count.
    """
    found = [
        value
        for value in re.findall(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""", page, re.I)
        if not value.startswith(("#", "data:"))
    ]
    found += re.findall(r"<(?:script|link|iframe|object|embed)\b[^>]*>", page, re.I)
    found += re.findall(r"""url\(\s*["']?(?!#|data:)[^)]*\)""", page, re.I)
    found += re.findall(r"@import", page, re.I)
    return found


def test_the_reference_check_catches_what_a_browser_would_fetch() -> None:
    assert external_references('<script src="https://cdn.example/plot.js"></script>')
    assert external_references('<link rel="stylesheet" href="http://example.org/a.css">')
    assert external_references('<img src="//example.org/a.png">')
    assert external_references("<style>body{background:url(https://example.org/a.png)}</style>")
    inline = '<svg xmlns="http://www.w3.org/2000/svg"><use xlink:href="#m1"/></svg>'
    assert external_references(inline + '<img src="data:image/png;base64,AAAA">') == []


@pytest.fixture(scope="module")
def results() -> list[SimResult]:
    u = utilisation(11, 24, 20, low=0.05)
    return [run(u, 16, "dvfs")[1], run(u, 16, "thr-mmt", 0.9)[1]]


@pytest.fixture(scope="module")
def page(results: list[SimResult]) -> str:
    return report.render(results, TITLE, "synthetic trace")


def test_the_report_is_one_html_page_with_inline_figures(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    # Active hosts, SLA violations, migrations, energy, and one heat map per run.
    assert page.count("<svg") == 6
    assert external_references(page) == []
    assert "https://" not in re.sub(r"<svg.*?</svg>", "", page, flags=re.S)


def test_the_report_tabulates_every_run(page: str) -> None:
    assert "<th>dvfs</th>" in page
    assert "<th>thr-mmt 0.9</th>" in page
    for label in ("energy (kWh)", "SLATAH", "PDM", "SLAV", "ESV", "migrations"):
        assert f"<th>{label}</th>" in page
    assert "24 VMs on 16 hosts" in page
    assert "synthetic trace" in page


def test_the_title_is_escaped(page: str) -> None:
    assert TITLE not in page
    assert "<title>Day &lt;3&gt; &amp; night</title>" in page


def test_nothing_to_report_is_an_error() -> None:
    with pytest.raises(ForethoughtError, match="nothing to report"):
        report.render([], TITLE, "synthetic trace")


def test_write_puts_the_page_in_a_file(results: list[SimResult], tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    report.write(results[:1], path, "one run", "synthetic trace")
    text = path.read_text(encoding="utf-8")
    assert "<svg" in text
    assert "<th>dvfs</th>" in text
    with pytest.raises(ForethoughtError, match="cannot write the report"):
        report.write(results[:1], tmp_path / "missing" / "report.html", "x", "y")


def test_an_idle_trace_draws_no_empty_heat_map_and_no_warning() -> None:
    import warnings

    idle = utilisation(5, 12, 8, low=0.0) * 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warned of identical y-limits
        page = report.render([run(idle, 8, "dvfs")[1]], "idle", "synthetic trace")
    assert "Host utilisation" not in page
    assert "Active hosts over time" in page
