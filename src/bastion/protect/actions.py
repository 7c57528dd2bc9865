"""What happens to a finding: allow, redact, mask, hash, pseudonymize or block.

Policy maps entity types and data classes to actions; a type's own entry beats
any of its classes, and when a finding belongs to several classes the strictest
of their actions wins. Strictness, from least to most protective:

    allow < mask < hash < pseudonymize < redact < block

Overlapping findings are merged into one span that takes the strictest action
of its members, so no part of a value survives because a weaker finding
covered it. Nothing returned here carries an original value.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from bastion.context import Finding
from bastion.errors import BastionError, ContentFiltered

if TYPE_CHECKING:
    from bastion.protect.vault import Vault

Action = Literal["allow", "mask", "hash", "pseudonymize", "redact", "block"]

#: Actions from least to most protective; a merged span takes the highest.
STRICTNESS: dict[str, int] = {
    "allow": 0,
    "mask": 1,
    "hash": 2,
    "pseudonymize": 3,
    "redact": 4,
    "block": 5,
}

#: Hex characters of the keyed hash shown in ``<TYPE:xxxxxxxxxx>``.
DEFAULT_HASH_CHARS = 10
#: Characters kept in the clear at the end of masked numbers (cards, SSNs, accounts).
MASK_KEEP_LAST = 4
#: Characters kept at the start of a masked secret (its provider prefix, e.g. ``sk-p``).
MASK_SECRET_PREFIX = 4

_TYPE_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_NON_DIGITS = re.compile(r"\D+")
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]+")
_WHITESPACE = re.compile(r"\s+")

#: Types whose hash is computed over digits only, so formatting does not break joins.
_DIGIT_TYPES = frozenset(
    {
        "CREDIT_CARD",
        "US_SSN",
        "US_ITIN",
        "PHONE_NUMBER",
        "US_BANK_NUMBER",
        "ABA_ROUTING_NUMBER",
        "NPI",
        "UK_NHS",
    }
)
#: Types whose hash ignores case and separators (IBANs, passports, record numbers).
_CODE_TYPES = frozenset({"IBAN_CODE", "US_PASSPORT", "MEDICAL_RECORD_NUMBER"})


def _default_output_types() -> dict[str, Action]:
    # A leaked system prompt ends the answer; a suspicious link is cut out of it.
    return {"SYSTEM_PROMPT_LEAK": "block", "EXFILTRATION_LINK": "redact"}


class ActionSettings(BaseModel):
    """Which action each type or data class gets, on the way in and on the way out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Action for a finding whose type and classes have no entry.
    default: Action = "redact"
    #: Per entity type, e.g. ``{"CREDIT_CARD": "mask"}``; beats ``classes``.
    types: dict[str, Action] = Field(default_factory=dict)
    #: Per data class, e.g. ``{"credentials": "block", "pci": "redact"}``.
    classes: dict[str, Action] = Field(default_factory=dict)
    #: Action for findings in answers (pseudonymize there means redact).
    output_default: Action = "redact"
    output_types: dict[str, Action] = Field(default_factory=_default_output_types)
    output_classes: dict[str, Action] = Field(default_factory=dict)
    #: Hex characters of the keyed hash shown in ``<TYPE:...>``.
    hash_chars: int = Field(default=DEFAULT_HASH_CHARS, ge=8, le=64)

    def input_policy(self) -> ActionPolicy:
        """The policy for prompts and tool results."""
        return ActionPolicy(default=self.default, by_type=self.types, by_class=self.classes)

    def output_policy(self) -> ActionPolicy:
        """The policy for answers; pseudonymizing an answer would hide values, so it redacts."""
        policy = ActionPolicy(default=self.output_default, by_type=self.output_types, by_class=self.output_classes)
        return policy.without_pseudonyms()


@dataclass(frozen=True, slots=True)
class ActionPolicy:
    """Maps a finding to its action: its type's entry, else its strictest class, else default."""

    default: Action = "redact"
    by_type: Mapping[str, Action] = field(default_factory=dict)
    by_class: Mapping[str, Action] = field(default_factory=dict)

    def action_for(self, finding: Finding) -> Action:
        """The action this policy takes on ``finding``."""
        action = self.by_type.get(finding.type)
        if action is not None:
            return action
        chosen: Action | None = None
        for data_class in finding.data_classes:
            candidate = self.by_class.get(data_class)
            if candidate is not None and (chosen is None or _stricter(candidate, chosen)):
                chosen = candidate
        return chosen if chosen is not None else self.default

    def uses(self, action: Action) -> bool:
        """Whether any rule of this policy can produce ``action``."""
        return self.default == action or action in self.by_type.values() or action in self.by_class.values()

    def without_pseudonyms(self) -> ActionPolicy:
        """The same policy with pseudonymize turned into redact."""

        def swap(a: Action) -> Action:
            return "redact" if a == "pseudonymize" else a

        return ActionPolicy(
            default=swap(self.default),
            by_type={k: swap(v) for k, v in self.by_type.items()},
            by_class={k: swap(v) for k, v in self.by_class.items()},
        )


def _stricter(a: str, b: str) -> bool:
    return STRICTNESS[a] > STRICTNESS[b]


class Hasher:
    """Keyed HMAC-SHA256 of values, with one key per tenant derived from the gateway secret."""

    __slots__ = ("_secret", "_chars", "_keys")

    def __init__(self, secret: SecretStr | bytes, chars: int = DEFAULT_HASH_CHARS) -> None:
        raw = secret.get_secret_value().encode() if isinstance(secret, SecretStr) else secret
        if len(raw) < 16:
            raise BastionError("The hashing secret is too short.")
        self._secret = raw
        self._chars = chars
        self._keys: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"Hasher(chars={self._chars}, secret=***)"

    def tenant_key(self, tenant: str | None) -> bytes:
        """The tenant's own key, so hashes of one tenant cannot be joined with another's."""
        name = tenant or ""
        key = self._keys.get(name)
        if key is None:
            key = hmac.new(self._secret, b"bastion/hash/v1/" + name.encode(), hashlib.sha256).digest()
            self._keys[name] = key
        return key

    def digest(self, value: str, entity_type: str, tenant: str | None = None) -> str:
        """The hex digest of ``value`` as the type normalises it (stable across formatting)."""
        message = entity_type.encode() + b"\0" + normalise_for_hash(value, entity_type).encode()
        mac = hmac.new(self.tenant_key(tenant), message, hashlib.sha256).hexdigest()
        return mac[: self._chars]

    def token(self, value: str, entity_type: str, tenant: str | None = None) -> str:
        """The text that replaces a hashed value: ``<EMAIL_ADDRESS:3f9a1c2e7b>``."""
        return f"<{entity_type}:{self.digest(value, entity_type, tenant)}>"


def normalise_for_hash(value: str, entity_type: str) -> str:
    """The canonical form hashed for a type, so ``4242 4242`` and ``4242-4242`` join."""
    if entity_type in _DIGIT_TYPES:
        return _NON_DIGITS.sub("", value)
    if entity_type in _CODE_TYPES:
        return _NON_ALNUM.sub("", value).upper()
    return _WHITESPACE.sub(" ", value.strip()).casefold()


def mask(value: str, entity_type: str) -> str:
    """A partial view of a value that keeps its shape and little else."""
    if entity_type == "EMAIL_ADDRESS" and "@" in value:
        local, _, domain = value.rpartition("@")
        return (local[:1] + "***" if local else "***") + "@" + domain
    if entity_type == "SECRET":
        # A fixed-length tail hides the secret's length; the prefix names the provider.
        keep = MASK_SECRET_PREFIX if len(value) >= 4 * MASK_SECRET_PREFIX else 0
        return value[:keep] + "********"
    if entity_type == "PERSON":
        return " ".join(w[:1] + "***" for w in value.split())
    if entity_type == "IP_ADDRESS":
        return _mask_ip(value)
    if entity_type == "IBAN_CODE":
        return value[:2] + _mask_keep_last(value[2:], MASK_KEEP_LAST)
    return _mask_keep_last(value, MASK_KEEP_LAST)


def _mask_keep_last(value: str, keep: int) -> str:
    """Star every letter and digit except the last ``keep``; separators stay as they are."""
    alnum = sum(ch.isalnum() for ch in value)
    # Short values would be given away by their last characters: hide them whole.
    visible = keep if alnum >= 2 * keep else 0
    out: list[str] = []
    seen = 0
    for ch in value:
        if ch.isalnum():
            seen += 1
            out.append(ch if seen > alnum - visible else "*")
        else:
            out.append(ch)
    return "".join(out)


def _mask_ip(value: str) -> str:
    if "." in value and ":" not in value:
        head, _, rest = value.partition(".")
        return head + "." + ".".join("***" for _ in rest.split("."))
    groups = value.split(":")
    return groups[0] + ":" + ":".join("****" if g else "" for g in groups[1:])


def redaction(entity_type: str) -> str:
    """The text that replaces a redacted value: ``[EMAIL_ADDRESS]``."""
    return f"[{entity_type}]"


@dataclass(frozen=True, slots=True)
class AppliedAction:
    """What was done to one span: where it was, where its replacement is, never the value."""

    type: str
    action: Action
    start: int
    end: int
    new_start: int
    new_end: int
    data_classes: tuple[str, ...] = ()
    #: Types of other findings merged into this span because they overlapped it.
    merged: tuple[str, ...] = ()

    def to_audit(self) -> dict[str, Any]:
        """The applied action as recorded."""
        out: dict[str, Any] = {
            "type": self.type,
            "action": self.action,
            "start": self.start,
            "end": self.end,
            "data_classes": list(self.data_classes),
        }
        if self.merged:
            out["merged"] = list(self.merged)
        return out


@dataclass(frozen=True, slots=True)
class ProtectedText:
    """Text after its actions, and what was applied where."""

    text: str
    applied: tuple[AppliedAction, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether any value was replaced."""
        return any(a.action != "allow" for a in self.applied)

    def to_audit(self) -> list[dict[str, Any]]:
        """Every applied action as recorded."""
        return [a.to_audit() for a in self.applied]


@dataclass(slots=True)
class PlannedSpan:
    """One merged span of overlapping findings and the action it will get."""

    start: int
    end: int
    action: Action
    lead: Finding
    members: list[Finding]

    @property
    def type(self) -> str:
        """The type the replacement names: that of the finding that chose the action."""
        return self.lead.type


#: ``(value, type) -> placeholder``; the vault provides it for a conversation.
Pseudonymizer = Callable[[str, str], str]


def refusal(types: Iterable[str]) -> ContentFiltered:
    """The error for blocked content: it names the types found, never their values."""
    names = sorted(set(types))
    return ContentFiltered(
        "The request was refused because it contains protected data: " + ", ".join(names) + ".",
        details={"types": names},
    )


def plan_actions(text: str, findings: Sequence[Finding], policy: ActionPolicy) -> list[PlannedSpan]:
    """Merge overlapping findings and pick each span's action; raise ContentFiltered on block."""
    length = len(text)
    spans: list[PlannedSpan] = []
    for f in sorted(findings, key=lambda f: (f.start, -f.end)):
        if not 0 <= f.start < f.end <= length:
            # An offset outside the text is a detector bug; acting on a guess could leak.
            raise BastionError("A finding does not fit the text it was found in.")
        if not _TYPE_NAME.match(f.type):
            raise BastionError("A finding has a type name that cannot be shown safely.")
        action = policy.action_for(f)
        last = spans[-1] if spans else None
        if last is not None and f.start < last.end:
            last.end = max(last.end, f.end)
            last.members.append(f)
            if _stricter(action, last.action) or (
                action == last.action and f.end - f.start > last.lead.end - last.lead.start
            ):
                last.action = action
                last.lead = f
            continue
        spans.append(PlannedSpan(f.start, f.end, action, f, [f]))
    blocked = {m.type for s in spans if s.action == "block" for m in s.members}
    if blocked:
        raise refusal(blocked)
    return spans


def apply_actions(
    text: str,
    findings: Sequence[Finding],
    policy: ActionPolicy,
    *,
    tenant: str | None = None,
    hasher: Hasher | None = None,
    pseudonymize: Pseudonymizer | None = None,
) -> ProtectedText:
    """Apply the policy's action to every finding in ``text``; raise ContentFiltered on block."""
    spans = plan_actions(text, findings, policy)
    return render(text, spans, tenant=tenant, hasher=hasher, pseudonymize=pseudonymize)


def render(
    text: str,
    spans: Sequence[PlannedSpan],
    *,
    tenant: str | None = None,
    hasher: Hasher | None = None,
    pseudonymize: Pseudonymizer | None = None,
) -> ProtectedText:
    """Write the replacements of planned spans into ``text``."""
    parts: list[str] = []
    applied: list[AppliedAction] = []
    cursor = 0
    out_len = 0
    for span in spans:
        before = text[cursor : span.start]
        parts.append(before)
        out_len += len(before)
        value = text[span.start : span.end]
        replacement = _replacement(value, span, tenant, hasher, pseudonymize)
        parts.append(replacement)
        applied.append(
            AppliedAction(
                type=span.type,
                action=span.action,
                start=span.start,
                end=span.end,
                new_start=out_len,
                new_end=out_len + len(replacement),
                data_classes=tuple(sorted({c for m in span.members for c in m.data_classes})),
                merged=tuple(sorted({m.type for m in span.members if m is not span.lead})),
            )
        )
        out_len += len(replacement)
        cursor = span.end
    parts.append(text[cursor:])
    return ProtectedText("".join(parts), tuple(applied))


def _replacement(
    value: str,
    span: PlannedSpan,
    tenant: str | None,
    hasher: Hasher | None,
    pseudonymize: Pseudonymizer | None,
) -> str:
    action = span.action
    if action == "allow":
        return value
    if action == "redact":
        return redaction(span.type)
    if action == "mask":
        return mask(value, span.type)
    if action == "hash":
        if hasher is None:
            raise BastionError("Hashing is configured but no hashing key is available.")
        return hasher.token(value, span.type, tenant)
    if action == "pseudonymize":
        if pseudonymize is None:
            raise BastionError("Pseudonymizing is configured but no vault is available.")
        return pseudonymize(value, span.type)
    raise BastionError("Unknown protection action.")


async def protect_text(
    text: str,
    findings: Sequence[Finding],
    policy: ActionPolicy,
    *,
    tenant: str | None = None,
    hasher: Hasher | None = None,
    vault: Vault | None = None,
    conversation_id: str | None = None,
) -> ProtectedText:
    """Like ``apply_actions``, taking pseudonyms from the conversation's vault."""
    return await _render_with_vault(text, plan_actions(text, findings, policy), tenant=tenant, hasher=hasher,
                                    vault=vault, conversation_id=conversation_id)


async def _render_with_vault(
    text: str,
    spans: Sequence[PlannedSpan],
    *,
    tenant: str | None,
    hasher: Hasher | None,
    vault: Vault | None,
    conversation_id: str | None,
) -> ProtectedText:
    """``render`` with the pseudonyms of the planned spans taken from the conversation's vault."""
    wanted = [(text[s.start : s.end], s.type) for s in spans if s.action == "pseudonymize"]
    table: dict[tuple[str, str], str] = {}
    if wanted:
        if vault is None or conversation_id is None:
            raise BastionError("Pseudonymizing is configured but no vault is available.")
        table = await vault.pseudonymize_many(conversation_id, wanted)
    return render(text, spans, tenant=tenant, hasher=hasher, pseudonymize=lambda v, t: table[(v, t)])


@dataclass(slots=True)
class ProtectedMessages:
    """A chat body after protection, what was found in it and what was done."""

    body: dict[str, Any]
    findings: list[Finding]
    applied: list[AppliedAction]


#: Where a text sits inside one message: ``("content",)``, ``("content", 2, "text")`` ...
TextPath = tuple[str | int, ...]


def message_texts(body: Mapping[str, Any]) -> list[tuple[str, int, TextPath, str]]:
    """Every text of the chat messages: contents, text parts and tool-call arguments."""
    out: list[tuple[str, int, TextPath, str]] = []
    messages = body.get("messages")
    if not isinstance(messages, list):
        return out
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            out.append((f"messages[{i}].content", i, ("content",), content))
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    path: TextPath = ("content", j, "text")
                    out.append((f"messages[{i}].content[{j}].text", i, path, part["text"]))
        calls = message.get("tool_calls")
        for j, call in enumerate(calls if isinstance(calls, list) else ()):
            function = call.get("function") if isinstance(call, dict) else None
            arguments = function.get("arguments") if isinstance(function, dict) else None
            if isinstance(arguments, str):
                path = ("tool_calls", j, "function", "arguments")
                out.append((f"messages[{i}].tool_calls[{j}].function.arguments", i, path, arguments))
    return out


def _replaced(container: Any, path: TextPath, text: str) -> Any:
    """A copy of ``container`` with the text at ``path`` replaced (the original is untouched)."""
    head, rest = path[0], path[1:]
    copy: Any = list(container) if isinstance(container, list) else dict(container)
    copy[head] = _replaced(container[head], rest, text) if rest else text
    return copy


async def protect_messages(
    body: Mapping[str, Any],
    detect: Callable[[str], list[Finding]],
    policy: ActionPolicy,
    *,
    tenant: str | None = None,
    hasher: Hasher | None = None,
    vault: Vault | None = None,
    conversation_id: str | None = None,
) -> ProtectedMessages:
    """Scan and protect every message text of a chat body; block lists the types of all texts."""
    texts = message_texts(body)
    scanned: list[tuple[int, TextPath, str, list[Finding], list[PlannedSpan]]] = []
    blocked: set[str] = set()
    for location, i, path, text in texts:
        try:
            found = detect(text)
        except BastionError:
            raise
        except Exception as exc:  # a broken detector refuses the request: fail closed
            raise BastionError("The request could not be scanned.") from exc
        for f in found:
            f.location = location
        spans: list[PlannedSpan] = []
        try:
            spans = plan_actions(text, found, policy)
        except ContentFiltered as exc:
            blocked.update(exc.details.get("types", ()))
        scanned.append((i, path, text, found, spans))
    if blocked:
        # Checked across all texts first, so the refusal names every blocked type at once.
        raise refusal(blocked)
    new_messages = list(body.get("messages", []))
    findings: list[Finding] = []
    applied: list[AppliedAction] = []
    for i, path, text, found, spans in scanned:
        findings.extend(found)
        if not found:
            continue
        # Planned once, above: nothing was blocked, so every text has its spans.
        result = await _render_with_vault(
            text,
            spans,
            tenant=tenant,
            hasher=hasher,
            vault=vault,
            conversation_id=conversation_id,
        )
        applied.extend(result.applied)
        new_messages[i] = _replaced(new_messages[i], path, result.text)
    new_body = dict(body)
    if "messages" in body:
        new_body["messages"] = new_messages
    return ProtectedMessages(new_body, findings, applied)
