"""`forethought hosts`: real hypervisors through libvirt (its test driver here)."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
from click.testing import CliRunner

from forethought.cli.main import main

needs_libvirt = pytest.mark.skipif(
    importlib.util.find_spec("libvirt") is None,
    reason="libvirt-python is not installed (forethought[libvirt])",
)


def test_without_libvirt_python_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "libvirt", None)  # import libvirt now fails
    result = CliRunner().invoke(main, ["hosts", "--connect", "test:///default"])
    assert result.exit_code == 1
    assert "forethought[libvirt]" in result.output


@needs_libvirt
def test_the_test_hypervisor_is_listed() -> None:
    result = CliRunner().invoke(
        main, ["hosts", "--connect", "test:///default", "--site", "test:///default=lab", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [h["site"] for h in out["hosts"]] == ["lab"]
    assert [v["id"] for v in out["vms"]] == ["test"]
    assert out["vms"][0]["memory_used_mb"] > 0
    for io in ("disk_read", "disk_write", "net_rx", "net_tx"):
        assert out["vms"][0][f"{io}_kb_per_s"] >= 0.0


@needs_libvirt
def test_the_table_shows_every_resource() -> None:
    result = CliRunner().invoke(main, ["hosts", "--connect", "test:///default"])
    assert result.exit_code == 0, result.output
    # Headers may wrap in a narrow terminal; their first words do not.
    for word in ("CPU", "memory", "disk", "net"):
        assert word in result.output


@needs_libvirt
def test_bad_connections_and_sites_are_clear_errors() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["hosts", "--connect", "test:///nowhere/node.xml"])
    assert result.exit_code == 1
    assert "cannot reach the hypervisor at test:///nowhere/node.xml" in result.output
    result = runner.invoke(main, ["hosts", "--connect", "test:///default", "--site", "lab"])
    assert result.exit_code == 1
    assert "URI=SITE" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--connect", ""], "--connect needs a URI"),
        (["--connect", "test:///default", "--connect", "test:///default"], "twice"),
        (
            ["--connect", "test:///default", "--site", "qemu:///other=public"],
            "qemu:///other is not one of the --connect URIs",
        ),
    ],
)
def test_connections_are_checked_before_any_is_made(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["hosts", *args])
    assert result.exit_code == 1
    assert message in result.output
