"""Reading Cedar policy files: split, parse, validate against the schema, and read annotations.

Each policy is parsed and validated on its own so that every problem is
reported with the file and line it is on. Annotations carry what plain Cedar
cannot say (see docs/policy.md):

    @id("...")          a stable name, shown in refusals and audit events
    @reason("...")      what the user reads when this policy refuses them
    @effect("...")      forbid: deny (default) | reroute | require_approval
                        permit: allow (default); with @applies_to, a protection action
    @applies_to("...")  data classes / entity types a protection action applies to
    @target("...")      where a reroute may go: tier:on_prem, region:eu*, baa, ...
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import cedarpy

from bastion.policy.schema import ACTIONS, NAMESPACE, SCHEMA_TEXT, bastion_schema

#: Protection actions, least to most protective (the same order the protect stage uses).
PROTECTION_STRICTNESS: dict[str, int] = {
    "allow": 0,
    "mask": 1,
    "hash": 2,
    "pseudonymize": 3,
    "redact": 4,
    "block": 5,
}
#: Effects a forbid may carry; the first is the default.
FORBID_EFFECTS = ("deny", "reroute", "require_approval")
#: Reroute target selectors that take a value (``tier:on_prem``) and those that do not (``baa``).
VALUE_SELECTORS = frozenset({"tier", "region", "provider", "cert"})
FLAG_SELECTORS = frozenset({"baa", "zero_data_retention", "no_training"})

_ID_SHAPE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_PER_ACTION = re.compile(r' for Bastion::Action::"[^"]*"')
_BACKTICKED = re.compile(r"`([^`\n]{1,80})`")
_ACTION_TYPE = f"{NAMESPACE}::Action"

PolicyKind = Literal["authz", "protection"]


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """A problem in a policy file, at a line a person can go to."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """One validated policy with its meaning for Bastion."""

    id: str
    source: str
    line: int
    cedar_effect: Literal["permit", "forbid"]
    kind: PolicyKind
    #: allow / deny / reroute / require_approval, or a protection action for kind "protection".
    effect: str
    reason: str
    applies_to: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    #: Actions the policy's scope can match; None means any action.
    actions: frozenset[str] | None = None
    est: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def location(self) -> str:
        """``file:line`` of the policy."""
        return f"{self.source}:{self.line}"


@dataclass(frozen=True, slots=True)
class PolicySource:
    """The text of one policy file and the name it is reported under."""

    name: str
    text: str


@dataclass(slots=True)
class CompileResult:
    """Policies that compiled, the problems found, and the version of the whole set."""

    policies: list[CompiledPolicy]
    problems: list[PolicyProblem]
    version: str

    @property
    def ok(self) -> bool:
        """Whether the set has no problems."""
        return not self.problems


def split_statements(text: str) -> list[tuple[int, str]]:
    """Split Cedar text into (first line, statement text) pairs, respecting strings and comments."""
    out: list[tuple[int, str]] = []
    start: int | None = None
    start_line = 1
    line = 1
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        elif c == "/" and text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif not c.isspace():
            if start is None:
                start, start_line = i, line
            if c == '"':
                i += 1
                while i < n and text[i] != '"':
                    if text[i] == "\\":
                        i += 1
                    elif text[i] == "\n":
                        line += 1
                    i += 1
            elif c == ";":
                out.append((start_line, text[start : i + 1]))
                start = None
        i += 1
    if start is not None:
        out.append((start_line, text[start:]))
    return out


def _line_of_problem(chunk: str, first_line: int, message: str) -> int:
    # Cedar's messages name the offending token in backticks; point at its line when we can.
    for token in _BACKTICKED.findall(message):
        idx = chunk.find(token)
        if idx >= 0:
            return first_line + chunk.count("\n", 0, idx)
    return first_line


def _scope_actions(est: dict[str, Any]) -> frozenset[str] | None:
    scope = est.get("action", {})
    op = scope.get("op")
    if op == "==" or (op == "in" and "entity" in scope):
        refs = [scope.get("entity", {})]
    elif op == "in" and "entities" in scope:
        refs = list(scope["entities"])
    else:
        return None
    names = set()
    for ref in refs:
        if ref.get("type") != _ACTION_TYPE or ref.get("id") not in ACTIONS:
            return None
        names.add(str(ref["id"]))
    return frozenset(names)


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.replace(";", ",").split(",") if p.strip())


def _check_target(selector: str) -> str | None:
    name, _, value = selector.partition(":")
    if name in FLAG_SELECTORS and not value:
        return None
    if name in VALUE_SELECTORS and value:
        return None
    return (
        f"@target selector {selector!r} is not understood; use tier:X, region:PATTERN, "
        "provider:NAME, cert:X, baa, zero_data_retention or no_training"
    )


def _annotation_line(chunk: str, first_line: int, name: str) -> int:
    idx = chunk.find("@" + name)
    return first_line + chunk.count("\n", 0, idx) if idx >= 0 else first_line


def _interpret(
    source: str, chunk: str, line: int, est: dict[str, Any], problems: list[PolicyProblem]
) -> CompiledPolicy | None:
    def at(name: str) -> int:
        return _annotation_line(chunk, line, name)

    ann: dict[str, str] = {k: str(v) for k, v in (est.get("annotations") or {}).items()}
    cedar_effect: Literal["permit", "forbid"] = "forbid" if est.get("effect") == "forbid" else "permit"
    pid = ann.get("id") or f"{source}:{line}"
    if "id" in ann and not _ID_SHAPE.match(ann["id"]):
        problems.append(PolicyProblem(source, at("id"), "@id may hold only letters, digits and _ . : - (1-128)"))
        return None
    applies_to = _split_list(ann.get("applies_to", ""))
    targets = _split_list(ann.get("target", ""))
    effect = ann.get("effect", "").strip().lower()
    kind: PolicyKind = "authz"
    if applies_to:
        kind = "protection"
        if effect not in PROTECTION_STRICTNESS:
            problems.append(
                PolicyProblem(
                    source,
                    at("applies_to"),
                    f"a policy with @applies_to needs @effect set to one of {', '.join(PROTECTION_STRICTNESS)}",
                )
            )
            return None
    elif cedar_effect == "permit":
        effect = effect or "allow"
        if effect != "allow":
            hint = (
                "add @applies_to(...) to make it a protection policy"
                if effect in PROTECTION_STRICTNESS
                else "reroute and require_approval are written as forbid policies"
            )
            problems.append(PolicyProblem(source, at("effect"), f"@effect({effect!r}) on a permit: {hint}"))
            return None
    else:
        effect = effect or "deny"
        if effect not in FORBID_EFFECTS:
            problems.append(
                PolicyProblem(
                    source,
                    at("effect"),
                    f"@effect({effect!r}) on a forbid must be one of {', '.join(FORBID_EFFECTS)}"
                    + ("; add @applies_to(...) for a protection action" if effect in PROTECTION_STRICTNESS else ""),
                )
            )
            return None
    if targets and effect != "reroute":
        problems.append(PolicyProblem(source, at("target"), '@target only applies to @effect("reroute")'))
        return None
    for t in targets:
        msg = _check_target(t)
        if msg:
            problems.append(PolicyProblem(source, at("target"), msg))
            return None
    return CompiledPolicy(
        id=pid,
        source=source,
        line=line,
        cedar_effect=cedar_effect,
        kind=kind,
        effect=effect,
        reason=ann.get("reason", "").strip(),
        applies_to=applies_to,
        targets=targets,
        actions=_scope_actions(est),
        est=est,
    )


def compile_source(src: PolicySource, problems: list[PolicyProblem]) -> list[CompiledPolicy]:
    """Parse, validate and interpret every policy of one file; problems are appended."""
    schema = bastion_schema()
    out: list[CompiledPolicy] = []
    for first_line, chunk in split_statements(src.text):
        if not chunk.rstrip().endswith(";"):
            problems.append(PolicyProblem(src.name, first_line, "policy does not end with ';'"))
            continue
        try:
            doc = json.loads(cedarpy.policies_to_json_str(chunk))
        except ValueError as exc:
            msg = str(exc).strip() or "not a valid Cedar policy"
            problems.append(PolicyProblem(src.name, _line_of_problem(chunk, first_line, msg), msg))
            continue
        if doc.get("templates"):
            problems.append(PolicyProblem(src.name, first_line, "templates (?principal / ?resource) are not supported"))
            continue
        statics = list((doc.get("staticPolicies") or {}).values())
        if len(statics) != 1:
            problems.append(PolicyProblem(src.name, first_line, "expected exactly one policy"))
            continue
        result = cedarpy.validate_policies(chunk, schema)
        if not result.validation_passed:
            # The validator repeats one mistake once per action it applies to; report it once.
            seen: set[str] = set()
            for err in result.errors:
                msg = _PER_ACTION.sub("", err.error.replace("for policy `policy0`, ", "")).strip()
                if msg not in seen:
                    seen.add(msg)
                    problems.append(PolicyProblem(src.name, _line_of_problem(chunk, first_line, msg), msg))
            continue
        compiled = _interpret(src.name, chunk, first_line, statics[0], problems)
        if compiled is not None:
            out.append(compiled)
    return out


def default_sources() -> list[PolicySource]:
    """The shipped default policies, in file-name order."""
    root = resources.files("bastion.policy").joinpath("defaults")
    files = sorted((f for f in root.iterdir() if f.name.endswith(".cedar")), key=lambda f: f.name)
    return [PolicySource(f"defaults/{f.name}", f.read_text(encoding="utf-8")) for f in files]


def policy_files(paths: Iterable[str | Path]) -> list[Path]:
    """The policy files named by ``paths``: files as given, directories' ``*.cedar`` sorted."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*.cedar") if f.is_file()))
        else:
            out.append(p)
    return out


def read_sources(paths: Iterable[str | Path], max_bytes: int, problems: list[PolicyProblem]) -> list[PolicySource]:
    """Read policy files; unreadable or oversized ones become problems (never half-read)."""
    out: list[PolicySource] = []
    for p in policy_files(paths):
        try:
            size = p.stat().st_size
            if size > max_bytes:
                problems.append(PolicyProblem(str(p), 1, f"file is {size} bytes, over the {max_bytes}-byte limit"))
                continue
            out.append(PolicySource(str(p), p.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(
                PolicyProblem(str(p), 1, f"cannot read policy file: {getattr(exc, 'strerror', None) or exc}")
            )
    return out


def set_version(sources: Sequence[PolicySource], disabled: Sequence[str]) -> str:
    """A short hash naming exactly this policy set (sources, schema and what is disabled)."""
    h = hashlib.sha256(SCHEMA_TEXT.encode())
    for s in sources:
        h.update(b"\0" + s.name.encode() + b"\0" + s.text.encode())
    h.update(("\0" + ",".join(sorted(disabled))).encode())
    return h.hexdigest()[:16]


def compile_sources(
    sources: Sequence[PolicySource],
    *,
    disabled: Sequence[str] = (),
    max_policies: int = 100_000,
    problems: list[PolicyProblem] | None = None,
) -> CompileResult:
    """Compile a whole policy set; ids must be unique and ``disabled`` must name real policies."""
    found: list[PolicyProblem] = list(problems or [])
    policies: list[CompiledPolicy] = []
    for src in sources:
        policies.extend(compile_source(src, found))
    seen: dict[str, CompiledPolicy] = {}
    for p in policies:
        if p.id in seen:
            found.append(PolicyProblem(p.source, p.line, f"@id {p.id!r} is already used at {seen[p.id].location}"))
        seen[p.id] = p
    for d in disabled:
        if d not in seen:
            found.append(PolicyProblem("policy.disable", 1, f"no policy has the id {d!r}"))
    kept = [p for p in policies if p.id not in set(disabled)]
    if len(kept) > max_policies:
        found.append(PolicyProblem("policy", 1, f"{len(kept)} policies, over the limit of {max_policies}"))
    return CompileResult(policies=kept, problems=found, version=set_version(sources, disabled))
