"""Policy files: validation with clear messages, matching, effective settings, explanation."""

from __future__ import annotations

from pathlib import Path

import pytest

from forethought.allocation.policy import (
    DEFAULT_POLICY_YAML,
    AnomalyAction,
    VmInfo,
    load_policy,
    parse_policy,
)
from forethought.core.errors import PolicyError
from forethought.core.resources import Resource

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"


def test_the_shipped_example_and_default_are_valid() -> None:
    policy = load_policy(EXAMPLE)
    assert [g.name for g in policy.groups] == ["databases", "batch", "everything-else"]
    assert parse_policy(DEFAULT_POLICY_YAML).groups[0].name == "all"


def test_first_matching_group_wins_and_tags_must_all_be_present() -> None:
    policy = load_policy(EXAMPLE)
    assert policy.group_of(VmInfo("db-1")).name == "databases"  # type: ignore[union-attr]
    batch = VmInfo("job-7", tags=frozenset({"batch", "nightly"}))
    assert policy.group_of(batch).name == "batch"  # type: ignore[union-attr]
    assert policy.group_of(VmInfo("web-3")).name == "everything-else"  # type: ignore[union-attr]


def test_group_settings_override_defaults_field_by_field() -> None:
    policy = load_policy(EXAMPLE)
    db = policy.groups[0]
    cpu = policy.settings(db, Resource.CPU)
    assert cpu.quantile == 0.99
    assert cpu.horizon_minutes == 60  # from defaults
    assert cpu.min == 10
    memory = policy.settings(db, Resource.MEMORY)
    assert memory.max_step_down == 0.05
    assert memory.quantile == 0.99
    assert db.anomaly.action is AnomalyAction.SCALE_UP
    assert policy.priority(db) == 0


def test_explanation_says_what_happens() -> None:
    text = load_policy(EXAMPLE).explain()
    assert "group databases (gold)" in text
    assert "p99 forecast" in text
    assert "scale up by 50%" in text


def test_explanation_says_how_long_a_shortfall_floor_holds() -> None:
    policy = parse_policy(
        "version: 1\ndefaults:\n  memory: {}\n  cpu: {shortfall_floor_minutes: 90}\n"
        "groups:\n  - {name: all, match: {name: '*'}}\n"
    )
    text = policy.explain()
    assert "keeps it as a floor for a day" in text  # memory's default
    assert "keeps it as a floor for 90 min" in text
    with pytest.raises(PolicyError, match="shortfall_floor_minutes"):
        parse_policy(
            "version: 1\ndefaults:\n  memory: {shortfall_floor_minutes: -5}\n"
            "groups:\n  - {name: all, match: {name: '*'}}\n"
        )


def test_explanation_of_a_bandwidth_gives_its_unit_and_floor() -> None:
    policy = parse_policy(
        "version: 1\ndefaults:\n  disk_write: {max: 20000}\n  net_rx: {min: 4096}\n"
        "groups:\n  - {name: all, match: {name: '*'}}\n"
    )
    text = policy.explain()
    assert "disk_write: provision" in text
    assert "within [1024, 20000] KB/s" in text  # the floor, not the policy's default 0
    assert "within [4096, no limit] KB/s" in text  # a min above the floor wins
    assert "1 MiB/s floor" in text


BAD = [
    ("version: 2\ngroups: [{name: a, match: {name: '*'}}]\n", "version", 1),
    ("version: 1\ngroups: []\n", "groups", 2),
    (
        "version: 1\ngroups:\n  - name: a\n    match: {name: '*'}\n"
        "    resources:\n      cpu: {min: 50, max: 20}\n",
        "min (50) is above max (20)",
        6,
    ),
    (
        "version: 1\ngroups:\n  - name: a\n    match: {name: '*'}\n"
        "    resources:\n      cpu: {quantile: 1.5}\n",
        "groups.a.resources.cpu.quantile",
        6,
    ),
    (
        "version: 1\ngroups:\n  - name: a\n    match: {name: '*'}\n    resources:\n"
        "      cpu: {headrom: 0.1}\n",
        "headrom",
        6,
    ),
    (
        "version: 1\ngroups:\n  - name: a\n    match: {name: '*'}\n    resources:\n"
        "      gpu: {min: 1}\n",
        "gpu",
        6,
    ),
    ("version: 1\ngroups:\n  - name: a\n    match: {}\n", "a match needs", 4),
    (
        "version: 1\ngroups:\n  - {name: a, match: {name: '*'}, sla_class: platinum}\n",
        "sla_class 'platinum'",
        None,
    ),
    (
        "version: 1\ngroups:\n  - {name: a, match: {name: '*'}}\n"
        "  - {name: a, match: {name: 'x'}}\n",
        "repeated: a",
        None,
    ),
]


@pytest.mark.parametrize(("text", "message", "line"), BAD)
def test_bad_policies_name_the_field_and_line(text: str, message: str, line: int | None) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(text, "p.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("p.yaml")
    if line is not None:
        assert f"line {line}" in str(err.value)


def test_max_above_every_host_is_refused() -> None:
    text = (
        "version: 1\nhost_capacity: {cpu: 400}\ngroups:\n"
        "  - name: big\n    match: {name: '*'}\n    resources:\n      cpu: {max: 800}\n"
    )
    with pytest.raises(
        PolicyError, match=r"line 7: groups.big.resources.cpu.max: 800 is above every host"
    ):
        parse_policy(text, "p.yaml")
    # A default's max above the hosts is named once, at the default's line.
    text = (
        "version: 1\nhost_capacity: {cpu: 400}\ndefaults:\n  cpu: {max: 500}\ngroups:\n"
        "  - {name: a, match: {name: 'a*'}}\n  - {name: b, match: {name: '*'}}\n"
    )
    with pytest.raises(PolicyError) as err:
        parse_policy(text, "p.yaml")
    assert (
        str(err.value)
        == "p.yaml, line 4: defaults.cpu.max: 500 is above every host's capacity (400)"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (  # a typo, with a suggestion
            "version: 1\ngroups:\n  - name: a\n    match: {name: '*'}\n"
            "    resources:\n      cpu: {quantlie: 0.9}\n",
            "p.yaml, line 6: groups.a.resources.cpu.quantlie: unknown field 'quantlie'; "
            "did you mean 'quantile'?",
        ),
        (  # YAML keeps the last of two keys: refused instead of silently taken
            "version: 1\ngroups:\n  - name: a\n    match: {name: '*'}\n"
            "    resources:\n      cpu: {quantile: 0.9, quantile: 0.5}\n",
            "p.yaml, line 6: 'quantile' is given twice",
        ),
        (  # a yes/no value would be read as 1
            "version: 1\ngroups:\n  - name: a\n    match: {name: '*'}\n"
            "    resources:\n      cpu: {quantile: true}\n",
            "p.yaml, line 6: groups.a.resources.cpu.quantile: a yes/no value",
        ),
        (  # the group's own sla_class line, not the top of the file
            "version: 1\ngroups:\n  - name: a\n    match: {name: '*'}\n    sla_class: platinum\n",
            "p.yaml, line 5: groups.a.sla_class: Value error, sla_class 'platinum' is not one of",
        ),
        (
            "version: 1\nhost_capacity: {cpu: 0}\ngroups:\n  - {name: a, match: {name: '*'}}\n",
            "p.yaml, line 2: host_capacity.cpu: Input should be greater than 0",
        ),
        (
            "version: 1\ngroups:\n  - {name: a, match: {name: '*'}}\n"
            "  - {name: a, match: {name: 'b'}}\n",
            "p.yaml, line 3: groups: Value error, group names must be unique; repeated: a",
        ),
        (  # a min from the defaults, a max from the group: checked once they are merged
            "version: 1\ndefaults:\n  cpu: {min: 50}\ngroups:\n  - name: a\n"
            "    match: {name: '*'}\n    resources:\n      cpu: {max: 10}\n",
            "p.yaml, line 8: groups.a.resources.cpu.max: min (50) is above max (10) once the "
            "group's settings override the defaults (min is the defaults')",
        ),
        (
            "version: 1\ngroups:\n  - name: a\n    match: {name: '*'}\n"
            "    resources:\n      cpu: {min: .inf}\n",
            "p.yaml, line 6: groups.a.resources.cpu.min: a finite number (not .inf or .nan)",
        ),
        (
            "version: 1\ngroups:\n  - name: a\n    match: {name: '*'}\n"
            "    resources:\n      cpu: {headroom: .nan}\n",
            "groups.a.resources.cpu.headroom: a finite number",
        ),
        (  # text where a number goes: refused, not quietly converted
            "version: 1\ngroups:\n  - name: a\n    match: {name: '*'}\n"
            "    resources:\n      cpu: {min: '10'}\n",
            "groups.a.resources.cpu.min: a number, not the text '10' (write it without quotes)",
        ),
        (  # longer than a day ahead: refused before a run would run out of memory
            "version: 1\ngroups:\n  - name: a\n    match: {name: '*'}\n"
            "    resources:\n      cpu: {horizon_minutes: 100000}\n",
            "p.yaml, line 6: groups.a.resources.cpu.horizon_minutes: Input should be less "
            "than or equal to 1440",
        ),
        (  # suggestions come from the fields allowed where the typo stands
            "version: 1\ngroups:\n  - name: a\n    match: {name: '*'}\n"
            "    anomaly: {acton: alert}\n",
            "groups.a.anomaly.acton: unknown field 'acton'; did you mean 'action'?",
        ),
    ],
)
def test_policy_mistakes_are_named_where_they_stand(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(text, "p.yaml")
    assert message in str(err.value)


def test_broken_yaml_and_non_mapping_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="line 3: not valid YAML"):
        parse_policy("version: 1\ngroups: [\n", "p.yaml")
    with pytest.raises(PolicyError, match="a mapping"):
        parse_policy("- just a list\n", "p.yaml")
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")


def test_assignment_names_unmatched_vms_and_idle_groups() -> None:
    policy = parse_policy(
        "version: 1\ngroups:\n  - {name: web, match: {name: 'web-*'}}\n"
        "  - {name: db, match: {name: 'db-*'}}\n",
        "p.yaml",
    )
    with pytest.raises(PolicyError, match="no group matches VM 'cache-1'"):
        policy.assign([VmInfo("web-1"), VmInfo("cache-1")])
    with pytest.raises(PolicyError, match=r"group\(s\) db match no VM"):
        policy.assign([VmInfo("web-1")])
    assert [g.name for g in policy.assign([VmInfo("web-1")], require_all_groups=False)] == ["web"]


def test_a_resource_field_typo_is_not_matched_to_another_mapping_s_field() -> None:
    # 'scale' is close to the anomaly's 'scale_up_by', which a resource does not take.
    text = (
        "version: 1\ngroups:\n  - name: a\n    match: {name: '*'}\n"
        "    resources:\n      cpu: {scale: 1}\n"
    )
    with pytest.raises(PolicyError) as err:
        parse_policy(text, "p.yaml")
    assert str(err.value) == "p.yaml, line 6: groups.a.resources.cpu.scale: unknown field 'scale'"


def test_a_policy_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(b"version: 1\n\xff\xfe groups\n")
    with pytest.raises(PolicyError, match=r"p.yaml, line 2: not UTF-8 text"):
        load_policy(path)


@pytest.mark.parametrize(("text", "value"), [("1e3", 1000.0), ("1.5E2", 150.0), ("5e-1", 0.5)])
def test_numbers_in_scientific_notation_are_numbers(text: str, value: float) -> None:
    # YAML 1.1 (PyYAML's) reads 1e3 as text; a policy reads it as YAML 1.2 does.
    policy = parse_policy(
        f"version: 1\ndefaults:\n  cpu: {{max: {text}}}\n"
        "groups:\n  - {name: a, match: {name: '*'}}\n"
    )
    assert policy.model.defaults[Resource.CPU].max == value


def test_repeated_sla_classes_are_refused() -> None:
    with pytest.raises(PolicyError, match="SLA classes must be unique; repeated: gold"):
        parse_policy(
            "version: 1\nsla_classes: [gold, gold]\ngroups:\n"
            "  - {name: a, match: {name: '*'}, sla_class: gold}\n"
        )


def test_aliases_share_settings_as_yaml_allows() -> None:
    policy = parse_policy(
        "version: 1\n"
        "defaults:\n"
        "  cpu: &steady {quantile: 0.9, headroom: 0.2}\n"
        "  memory: *steady\n"
        "groups:\n"
        "  - {name: all, match: {name: '*'}}\n"
    )
    assert policy.settings(policy.groups[0], Resource.MEMORY).headroom == 0.2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nx: &a [*a]\n", "line 2: an alias contains itself"),
        ("version: 1\nx: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        (
            # A "billion laughs": nine values, each nine of the one before.
            "version: 1\na: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
            + "".join(
                f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
                for p, c in zip("abcdefgh", "bcdefghi", strict=True)
            ),
            "expand to more than 100,000 values",
        ),
    ],
)
def test_aliases_that_never_end_are_refused_at_once(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(text, "p.yaml")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            "host_capacity: {cpu: 100}\ndefaults:\n  cpu: {min: 500}\n",
            r"line 4: defaults.cpu.min: 500 is above every host's capacity \(100\)",
        ),
        (
            "defaults:\n  net_rx: {max: 500}\n",
            "line 3: defaults.net_rx.max: 500 KB/s is below the 1024 KB/s",
        ),
    ],
)
def test_limits_no_allocation_can_keep_are_refused(settings: str, message: str) -> None:
    text = f"version: 1\n{settings}groups:\n  - {{name: all, match: {{name: '*'}}}}\n"
    with pytest.raises(PolicyError, match=message):
        parse_policy(text, "p.yaml")


def test_a_word_where_a_number_goes_is_not_told_to_drop_quotes() -> None:
    text = (
        "version: 1\ndefaults:\n  cpu: {headroom: high}\n"
        "groups:\n  - {name: all, match: {name: '*'}}\n"
    )
    with pytest.raises(PolicyError) as refused:
        parse_policy(text, "p.yaml")
    assert "defaults.cpu.headroom: a number, not the text 'high'" in str(refused.value)
    assert "without quotes" not in str(refused.value)
