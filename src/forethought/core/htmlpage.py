"""What every HTML report shares: matplotlib loaded on demand, inline SVG, one page shell.

A report is one self-contained file: figures are inlined as SVG and nothing is fetched
from a network when it is opened, so it can be mailed or archived as it is.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from forethought.core.errors import ForethoughtError

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
    "table{border-collapse:collapse;font-size:0.9em}"
    "td,th{border:1px solid #ccc;padding:0.3em 0.6em;text-align:right}"
    "svg{max-width:100%;height:auto}"
)


@dataclass(frozen=True)
class Drawable:
    """Series a report can draw: values and mask (series, steps), names, step, unit label."""

    values: npt.NDArray[np.float64]
    mask: npt.NDArray[np.bool_]
    names: Sequence[str]
    step_seconds: int
    unit: str

    def observed(self, row: int) -> npt.NDArray[np.float64]:
        """Row ``row`` with missing samples as NaN (gaps in the line)."""
        return np.where(self.mask[row], self.values[row], np.nan)


def pyplot() -> Any:
    """matplotlib's pyplot on the non-interactive backend, or a clear error without it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        # Fixed ids and no date in the SVG: the same run gives the same report, byte for byte.
        matplotlib.rcParams["svg.hashsalt"] = "forethought"
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ForethoughtError(
            "the HTML report needs matplotlib: pip install 'forethought[report]'"
        ) from exc
    return plt


def svg(fig: Any) -> str:
    """A matplotlib figure as an inline ``<svg>`` element."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]


def counts_table(counts: Mapping[str, int], counted: str, what: str, empty: str) -> str:
    """How many ``counted`` carry each ``what``, largest first; ``empty`` when none do."""
    if not counts:
        return f"<p>{html.escape(empty)}</p>"
    rows = "".join(
        f"<tr><td>{count:,}</td><td style='text-align:left'>{html.escape(text)}</td></tr>"
        for text, count in sorted(counts.items(), key=lambda kv: -kv[1])
    )
    return (
        f"<table><tr><th>{html.escape(counted)}</th><th>{html.escape(what)}</th></tr>{rows}</table>"
    )


def page(title: str, body: str) -> str:
    """One HTML document: the title as heading, then ``body`` (already HTML)."""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def write_page(path: Path, text: str) -> None:
    """Write a report, turning an unwritable path into a clear error."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ForethoughtError(f"cannot write the report {path}: {exc.strerror}") from exc
