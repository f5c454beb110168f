"""Scaling policy files: YAML, typed and validated, with errors that name the field.

A policy file sorts VMs into groups (by name pattern, tag or application) and says, per
group and resource, how to size them::

    version: 1
    sla_classes: [gold, silver, standard, bronze]   # highest priority first
    host_capacity: {cpu: 400, memory: 400}          # optional, in the resources' units
    defaults:
      cpu: {quantile: 0.95, headroom: 0.1}
    groups:
      - name: web
        match: {name: "web-*"}
        sla_class: gold
        resources:
          cpu: {min: 5, max: 100, quantile: 0.99, headroom: 0.15}
          memory: {quantile: 0.99, max_step_down: 0.1, down_after_minutes: 120}
        anomaly: {action: scale_up, scale_up_by: 0.5}
      - name: rest
        match: {name: "*"}

Values are in each resource's unit as the trace gives it (percent of the VM's provisioned
capacity for the shared traces). A group's resource settings override the defaults field
by field. The first group that matches a VM takes it.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from forethought.core.errors import PolicyError
from forethought.core.resources import BANDWIDTH_FLOOR_KBS, BANDWIDTHS, Resource

#: Service classes when a policy names none, highest priority first.
DEFAULT_SLA_CLASSES = ("gold", "silver", "standard", "bronze")


class AnomalyAction(StrEnum):
    ALERT = "alert"
    SCALE_UP = "scale_up"
    ISOLATE = "isolate"


#: A policy number: an int or a float, finite (see ``_Strict``), never text such as "10".
Number = Annotated[float, Field(strict=True)]


class _Strict(BaseModel):
    # Numbers are finite and given as numbers: "10" in quotes or .inf is a slip, refused.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ResourcePolicy(_Strict):
    """How one resource of a group's VMs is sized. Every field has a documented default."""

    min: Number = Field(0.0, ge=0, description="never allocate less")
    max: Number | None = Field(None, gt=0, description="never allocate more (None: the VM's size)")
    quantile: Number = Field(0.95, gt=0, lt=1, description="forecast quantile to provision for")
    headroom: Number = Field(0.10, ge=0, le=10, description="fraction added on top")
    horizon_minutes: Number = Field(
        60, gt=0, le=24 * 60, description="how far ahead an allocation must hold"
    )
    up_tolerance: Number = Field(0.0, ge=0, le=1, description="scale up when short by more")
    down_tolerance: Number = Field(0.15, ge=0, lt=1, description="scale down when over by more")
    max_step_up: Number | None = Field(None, gt=0, description="largest increase, fraction")
    max_step_down: Number = Field(0.25, gt=0, le=1, description="largest decrease, fraction")
    cooldown_minutes: Number = Field(60, ge=0, description="least time between two decreases")
    down_after_minutes: Number = Field(30, ge=0, description="time below before a decrease")
    shortfall_floor_minutes: Number | None = Field(
        None,
        ge=0,
        description="how long a shortfall's raised floor holds (None: a day for memory, "
        "where a shortfall is an out-of-memory or swap signal; the next decision otherwise)",
    )
    short_target: Number | None = Field(
        None,
        gt=0,
        lt=1,
        description="share of intervals a VM may be short: headroom is learned per VM, "
        "raised after each shortfall and eased after each interval that is not, so the "
        "VM is short at most this often in the long run (None: no learned headroom)",
    )

    @model_validator(mode="after")
    def _limits(self) -> ResourcePolicy:
        if self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g})")
        return self


class AnomalyPolicy(_Strict):
    action: AnomalyAction = AnomalyAction.ALERT
    scale_up_by: Number = Field(0.5, gt=0, le=10, description="fraction added on scale_up")


class Match(_Strict):
    name: str | None = Field(None, description="glob pattern on the VM name")
    tags: list[str] = Field(default_factory=list, description="all of these tags")
    application: str | None = None

    @model_validator(mode="after")
    def _something(self) -> Match:
        if self.name is None and not self.tags and self.application is None:
            raise ValueError("a match needs a name pattern, tags or an application")
        return self


class Group(_Strict):
    name: str = Field(min_length=1)
    match: Match
    sla_class: str = "standard"
    resources: dict[Resource, ResourcePolicy] = Field(default_factory=dict)
    anomaly: AnomalyPolicy = AnomalyPolicy()

    @field_validator("sla_class")
    @classmethod
    def _known_class(cls, value: str, info: ValidationInfo) -> str:
        # The file's classes come in the validation context, so that the error points at
        # the group's own sla_class line (PolicyModel checks again without a context).
        classes = (info.context or {}).get("sla_classes")
        if classes is not None and value not in classes:
            raise ValueError(f"sla_class {value!r} is not one of {', '.join(classes)}")
        return value


class PolicyModel(_Strict):
    version: Literal[1]
    sla_classes: list[str] = Field(default_factory=lambda: list(DEFAULT_SLA_CLASSES), min_length=1)
    host_capacity: dict[Resource, Annotated[Number, Field(gt=0)]] = Field(default_factory=dict)
    defaults: dict[Resource, ResourcePolicy] = Field(default_factory=dict)
    groups: list[Group] = Field(min_length=1)

    @field_validator("sla_classes")
    @classmethod
    def _unique_classes(cls, classes: list[str]) -> list[str]:
        dup = sorted({c for c in classes if classes.count(c) > 1})
        if dup:
            raise ValueError(f"SLA classes must be unique; repeated: {', '.join(dup)}")
        return classes

    @field_validator("groups")
    @classmethod
    def _unique_names(cls, groups: list[Group]) -> list[Group]:
        names = [g.name for g in groups]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"group names must be unique; repeated: {', '.join(dup)}")
        return groups

    @model_validator(mode="after")
    def _consistent(self) -> PolicyModel:
        for g in self.groups:
            if g.sla_class not in self.sla_classes:
                raise ValueError(
                    f"group {g.name}: sla_class {g.sla_class!r} is not one of "
                    f"{', '.join(self.sla_classes)}"
                )
        return self


@dataclass(frozen=True)
class VmInfo:
    """What a policy can match a VM on."""

    name: str
    tags: frozenset[str] = frozenset()
    application: str | None = None


class Policy:
    """A validated policy file: group matching, effective settings, and an explanation."""

    def __init__(self, model: PolicyModel, source: str = "<policy>") -> None:
        self.model, self.source = model, source
        for group in model.groups:
            for resource in {*group.resources, *model.defaults}:
                limit = model.host_capacity.get(resource)
                top = self.settings(group, resource).max
                if limit is not None and top is not None and top > limit:
                    raise PolicyError(
                        f"{source}: groups.{group.name}.resources.{resource.value}.max "
                        f"({top:g}) is above every host's capacity ({limit:g})"
                    )

    @property
    def groups(self) -> list[Group]:
        return self.model.groups

    def priority(self, group: Group) -> int:
        """0 for the highest SLA class, then 1, 2..."""
        return self.model.sla_classes.index(group.sla_class)

    def settings(self, group: Group, resource: Resource) -> ResourcePolicy:
        """The group's settings for a resource, over the defaults field by field."""
        base = self.model.defaults.get(resource, ResourcePolicy())
        own = group.resources.get(resource)
        if own is None:
            return base
        return base.model_copy(update=own.model_dump(exclude_unset=True))

    def group_of(self, vm: VmInfo) -> Group | None:
        for group in self.model.groups:
            m = group.match
            if m.name is not None and not fnmatch.fnmatchcase(vm.name, m.name):
                continue
            if m.tags and not set(m.tags) <= vm.tags:
                continue
            if m.application is not None and m.application != vm.application:
                continue
            return group
        return None

    def assign(self, vms: list[VmInfo], require_all_groups: bool = True) -> list[Group]:
        """Each VM's group; an error names the first VM no group takes, and (unless told
        otherwise) the groups that take no VM, before anything runs."""
        out: list[Group] = []
        for vm in vms:
            group = self.group_of(vm)
            if group is None:
                raise PolicyError(
                    f"{self.source}: no group matches VM {vm.name!r}; add a group or a "
                    'catch-all (match: {name: "*"})'
                )
            out.append(group)
        if require_all_groups:
            idle = self.idle_groups(vms)
            if idle:
                raise PolicyError(
                    f"{self.source}: group(s) {', '.join(idle)} match no VM of the trace"
                )
        return out

    def idle_groups(self, vms: list[VmInfo]) -> list[str]:
        """Groups that take none of these VMs (first match wins)."""
        used = {g.name for vm in vms if (g := self.group_of(vm)) is not None}
        return [g.name for g in self.model.groups if g.name not in used]

    def explain(self) -> str:
        """What the policy will do, in words, group by group."""
        lines = [f"policy {self.source}: {len(self.groups)} group(s), first match wins"]
        order = " > ".join(self.model.sla_classes)
        lines.append(f"SLA classes, served first when a host is short: {order}")
        for group in self.groups:
            m = group.match
            what = [f"name {m.name!r}"] if m.name else []
            what += [f"tags {sorted(m.tags)}"] if m.tags else []
            what += [f"application {m.application!r}"] if m.application else []
            lines.append(f"\ngroup {group.name} ({group.sla_class}): VMs with {', '.join(what)}")
            resources = sorted({*group.resources, *self.model.defaults}) or [Resource.CPU]
            lines.extend(
                f"  {r.value}: " + _describe(self.settings(group, r), r) for r in resources
            )
            a = group.anomaly
            act = {
                AnomalyAction.ALERT: "record it and alert",
                AnomalyAction.SCALE_UP: f"scale up by {a.scale_up_by:.0%} at once",
                AnomalyAction.ISOLATE: "record it and freeze the VM's decreases (isolate)",
            }[a.action]
            lines.append(f"  anomaly (demand above the forecast's p99, 3 steps running): {act}")
        return "\n".join(lines)


def shortfall_floor_minutes(p: ResourcePolicy, resource: Resource) -> float:
    """How long a shortfall's raised floor holds: the policy's, else the resource's default."""
    if p.shortfall_floor_minutes is not None:
        return p.shortfall_floor_minutes
    return 24 * 60.0 if resource is Resource.MEMORY else 0.0


def _floor_words(p: ResourcePolicy, resource: Resource) -> str:
    minutes = shortfall_floor_minutes(p, resource)
    if minutes <= 0:
        return ""
    held = "a day" if minutes == 24 * 60 else f"{minutes:g} min"
    return f" and keeps it as a floor for {held}"


def _describe(p: ResourcePolicy, resource: Resource) -> str:
    bandwidth = resource in BANDWIDTHS
    top = ("no limit" if bandwidth else "the VM's size") if p.max is None else f"{p.max:g}"
    low = max(p.min, BANDWIDTH_FLOOR_KBS) if bandwidth else p.min
    unit = " KB/s" if bandwidth else ""
    up = "" if p.max_step_up is None else f", by at most {p.max_step_up:.0%}"
    return (
        f"provision for the p{100 * p.quantile:g} forecast over the next "
        f"{p.horizon_minutes:g} min + {p.headroom:.0%} headroom, within [{low:g}, {top}]{unit}; "
        f"increase at once when the forecast exceeds the allocation by more than "
        f"{p.up_tolerance:.0%}{up}; decrease only after {p.down_after_minutes:g} min more "
        f"than {p.down_tolerance:.0%} above the need, by at most {p.max_step_down:.0%}, "
        f"at most once every {p.cooldown_minutes:g} min; demand above the allocation raises "
        f"it at once{_floor_words(p, resource)}"
        + (
            ""
            if p.short_target is None
            else f", and adds learned headroom until the VM is short in at most "
            f"{p.short_target:.1%} of intervals"
        )
        + (", never below the 1 MiB/s floor that keeps I/O from stalling" if bandwidth else "")
    )


def _line_of(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The line of a field in the YAML source, following a validation error's location."""
    node = root
    key_node: yaml.Node | None = None
    for key in loc:
        if key == "[key]":  # the error is about the mapping key itself
            node = key_node
            break
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == str(key)), None)
            key_node, node = pair if pair is not None else (None, None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            node = node.value[key] if key < len(node.value) else None
        else:
            break
        if node is None:
            return None
    return None if node is None else node.start_mark.line + 1


def _where(data: Any, loc: tuple[int | str, ...]) -> str:
    """groups[0] becomes groups.web where the group has a name."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int) and isinstance(node, list) and key < len(node):
            item = node[key]
            name = item.get("name") if isinstance(item, dict) else None
            parts.append(f"[{key}]" if name is None else f".{name}")
            node = item
        else:
            parts.append(("." if parts else "") + str(key))
            node = node.get(key) if isinstance(node, dict) else None
    return "".join(parts).lstrip(".")


def _field_names(loc: tuple[int | str, ...]) -> list[str]:
    """The field names allowed where an unknown one stands, for a suggestion on a typo."""
    model: type[BaseModel] = PolicyModel
    keys = [k for k in loc[:-1] if isinstance(k, str)]
    for i, key in enumerate(keys):
        if key == "groups":
            model = Group
        elif key == "match":
            model = Match
        elif key == "anomaly":
            model = AnomalyPolicy
        elif key in ("resources", "defaults") and i + 1 < len(keys):
            model = ResourcePolicy  # a resource's mapping (the key after is its name)
    return sorted(model.model_fields)


#: The most values a policy may hold once its aliases are expanded: far above any real
#: policy, far below what a few nested aliases (a "billion laughs") can make.
MAX_POLICY_VALUES = 100_000


def _check_aliases(root: yaml.Node | None, source: str) -> None:
    """Refuse an alias that contains itself, and aliases that expand past
    :data:`MAX_POLICY_VALUES` values: walking either would never end."""
    counted = 0
    on_path: set[int] = set()

    def walk(node: yaml.Node) -> None:
        nonlocal counted
        counted += 1
        if counted > MAX_POLICY_VALUES:
            raise PolicyError(
                f"{source}: its aliases (*name) expand to more than {MAX_POLICY_VALUES:,} "
                "values; a policy file needs far fewer"
            )
        if id(node) in on_path:
            raise PolicyError(
                f"{source}, line {node.start_mark.line + 1}: an alias contains itself"
            )
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        if children:
            on_path.add(id(node))
            for child in children:
                walk(child)
            on_path.discard(id(node))

    if root is not None:
        walk(root)


def _duplicate_keys(node: yaml.Node | None) -> list[tuple[int, str]]:
    """(line, key) of every key given twice in one mapping: YAML would keep the last."""
    found: list[tuple[int, str]] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                found.append((key.start_mark.line + 1, str(key.value)))
            seen.add(key.value)
            found += _duplicate_keys(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found += _duplicate_keys(item)
    return found


def _booleans(data: Any, loc: tuple[int | str, ...] = ()) -> list[tuple[int | str, ...]]:
    """Where a yes/no value stands: no policy field takes one (pydantic would read it as 1)."""
    if isinstance(data, bool):
        return [loc]
    if isinstance(data, dict):
        return [w for k, v in data.items() for w in _booleans(v, (*loc, k))]
    if isinstance(data, list):
        return [w for i, v in enumerate(data) for w in _booleans(v, (*loc, i))]
    return []


def _message(err: Any) -> str:
    """pydantic's message, reworded where it would puzzle a policy author."""
    if err["type"] == "extra_forbidden":
        name = str(err["loc"][-1])
        close = difflib.get_close_matches(name, _field_names(tuple(err["loc"])), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown field {name!r}{hint}"
    if err["type"] == "float_type" and isinstance(err.get("input"), str):
        text = err["input"]
        try:
            float(text)
        except ValueError:  # a word, not a quoted number
            return f"a number, not the text {text!r}"
        return f"a number, not the text {text!r} (write it without quotes)"
    if err["type"] == "finite_number":
        return "a finite number (not .inf or .nan)"
    return str(err["msg"])


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading numbers as YAML 1.2 does: PyYAML follows YAML 1.1,
    where ``1e3`` (no dot, no sign in the exponent) is text, so a policy's ``max: 1e3``
    would be refused as a quoted number."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^[-+]?(?:[0-9][0-9_]*)\.?[0-9_]*(?:[eE][-+]?[0-9]+)$"
        r"|^[-+]?(?:[0-9][0-9_]*)\.[0-9_]*$|^[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?$"
        r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$",
    ),
    list("-+0123456789."),
)


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Validate a policy given as YAML text; errors name the source, field and line."""
    try:
        root = yaml.compose(text, Loader=_Loader)
        _check_aliases(root, source)  # before anything walks the tree they could blow up
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise PolicyError(f"{source}{line}: not valid YAML: {exc}") from None
    except RecursionError:  # hundreds of levels deep: no policy is, and YAML recurses
        raise PolicyError(f"{source}: nested too deeply to be a policy file") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: a policy file is a mapping with version and groups")
    messages = [f"{source}, line {n}: {key!r} is given twice" for n, key in _duplicate_keys(root)]
    for loc in _booleans(data):
        line_no = _line_of(root, loc)
        at = f", line {line_no}" if line_no else ""
        messages.append(
            f"{source}{at}: {_where(data, loc)}: a yes/no value, which no policy field takes "
            "(quote it if you meant the text)"
        )
    if messages:
        raise PolicyError("\n".join(messages))
    classes = data.get("sla_classes", DEFAULT_SLA_CLASSES)
    known = list(classes) if isinstance(classes, list | tuple) else None
    try:
        model = PolicyModel.model_validate(data, context={"sla_classes": known})
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            line_no = _line_of(root, loc)
            at = f", line {line_no}" if line_no else ""
            field = _where(data, loc) or "(top level)"
            messages.append(f"{source}{at}: {field}: {_message(err)}")
        raise PolicyError("\n".join(messages)) from None
    for loc, problem in [*_above_hosts(model), *_merged_limits(model), *_impossible(model)]:
        line_no = _line_of(root, loc)
        at = f", line {line_no}" if line_no else ""
        messages.append(f"{source}{at}: {_where(data, loc)}: {problem}")
    if messages:
        raise PolicyError("\n".join(messages))
    return Policy(model, source)


def _above_hosts(model: PolicyModel) -> list[tuple[tuple[int | str, ...], str]]:
    """Where a max is above every host's capacity: the group's own max, else the default's."""
    out: list[tuple[tuple[int | str, ...], str]] = []
    for i, group in enumerate(model.groups):
        for resource, limit in model.host_capacity.items():
            own = group.resources.get(resource)
            loc: tuple[int | str, ...]
            if own is not None and "max" in own.model_fields_set:
                top, loc = own.max, ("groups", i, "resources", resource.value, "max")
            elif resource in model.defaults:
                top, loc = model.defaults[resource].max, ("defaults", resource.value, "max")
            else:
                continue
            if top is not None and top > limit:
                out.append((loc, f"{top:g} is above every host's capacity ({limit:g})"))
    return list(dict.fromkeys(out))  # a default's max is reported once, not per group


def _impossible(model: PolicyModel) -> list[tuple[tuple[int | str, ...], str]]:
    """Limits no allocation can keep: a min above every host's capacity, or a disk or
    network max below the floor every throttle keeps (a lower one would stall the VM)."""
    out: list[tuple[tuple[int | str, ...], str]] = []
    mappings: list[tuple[tuple[int | str, ...], Resource, ResourcePolicy]] = [
        (("defaults", r.value), r, p) for r, p in model.defaults.items()
    ]
    for i, group in enumerate(model.groups):
        mappings += [
            (("groups", i, "resources", r.value), r, p) for r, p in group.resources.items()
        ]
    for where, resource, p in mappings:
        limit = model.host_capacity.get(resource)
        if "min" in p.model_fields_set and limit is not None and p.min > limit:
            out.append(((*where, "min"), f"{p.min:g} is above every host's capacity ({limit:g})"))
        if resource in BANDWIDTHS and p.max is not None and p.max < BANDWIDTH_FLOOR_KBS:
            out.append(
                (
                    (*where, "max"),
                    f"{p.max:g} KB/s is below the {BANDWIDTH_FLOOR_KBS:g} KB/s every disk and "
                    "network limit keeps (a lower one would stall the VM's I/O)",
                )
            )
    return out


def _merged_limits(model: PolicyModel) -> list[tuple[tuple[int | str, ...], str]]:
    """Where a group's min ends above its max once its settings override the defaults.

    Each mapping's own min and max are checked as it is read; this catches a min from one
    and a max from the other (``defaults: {cpu: {min: 50}}`` and a group's ``max: 10``).
    """
    out: list[tuple[tuple[int | str, ...], str]] = []
    for i, group in enumerate(model.groups):
        for resource, own in group.resources.items():
            base = model.defaults.get(resource, ResourcePolicy())
            low = own.min if "min" in own.model_fields_set else base.min
            top = own.max if "max" in own.model_fields_set else base.max
            if top is None or low <= top:
                continue
            field = "max" if "max" in own.model_fields_set else "min"
            other = "min" if field == "max" else "max"
            source = "its own" if other in own.model_fields_set else "the defaults'"
            out.append(
                (
                    ("groups", i, "resources", resource.value, field),
                    f"min ({low:g}) is above max ({top:g}) once the group's settings "
                    f"override the defaults ({other} is {source})",
                )
            )
    return out


def load_policy(path: str | Path) -> Policy:
    if not str(path).strip():  # Path("") is "." and would read as a directory
        raise PolicyError("the policy file name is empty; give the path of a YAML file")
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{p}: cannot read the policy file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        line = p.read_bytes()[: exc.start].count(b"\n") + 1
        raise PolicyError(
            f"{p}, line {line}: not UTF-8 text (byte {exc.start}); a policy file is YAML text"
        ) from None
    return parse_policy(text, str(p))


#: The policy used when none is given: one catch-all group with the defaults.
DEFAULT_POLICY_YAML = """\
version: 1
defaults:
  cpu: {quantile: 0.97, headroom: 0.10, short_target: 0.01}
  memory: {quantile: 0.99, headroom: 0.05, max_step_down: 0.10, down_after_minutes: 120,
           short_target: 0.01}
groups:
  - name: all
    match: {name: "*"}
"""
