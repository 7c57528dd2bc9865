"""The inspect and transform stages: find sensitive data and attacks, then protect what leaves.

inspect    scans every message text (contents, text parts, tool-call arguments)
           for sensitive data and every user or untrusted text for prompt
           injection; findings go to the context for policy to see.
transform  applies the protection actions policy chose (redact, mask, hash,
           pseudonymize, block), marks untrusted tool results, and puts a
           canary in the system prompt.

A detector that fails refuses the request: nothing unscanned leaves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from bastion.context import Finding, RequestContext
from bastion.errors import BastionError, ContentFiltered, ServiceUnavailable
from bastion.protect.actions import ActionPolicy, Hasher, apply_actions, message_texts, protect_messages
from bastion.protect.canary import CANARY_STATE, Canary, insert_canary
from bastion.protect.config import ProtectionSettings
from bastion.protect.injection.detector import InjectionDetector, Source
from bastion.protect.spotlight import spotlight
from bastion.protect.vault import PSEUDONYMS_STATE, Vault, derive_conversation_id

log = logging.getLogger("bastion.protect")

#: ``ctx.state`` key of the findings per scanned text (so transform does not scan twice).
DETECTED_STATE = "protect.detected"
#: ``ctx.state`` key of the highest injection score, in percent (policy reads it).
INJECTION_STATE = "injection_score"
#: ``ctx.state`` key of the conversation id header.
CONVERSATION_STATE = "conversation_id"

Detect = Callable[..., list[Finding]]


def _source(role: Any) -> Source:
    # Tool results are untrusted content; everything else in the body came from the caller.
    return "tool" if role == "tool" else "user"


class InspectStage:
    """Finds sensitive data and prompt injection in the request; refuses injection."""

    name = "inspect"

    def __init__(self, detect: Detect, injection: InjectionDetector | None, settings: ProtectionSettings) -> None:
        self._detect = detect
        self._injection = injection
        self._settings = settings

    async def __call__(self, ctx: RequestContext) -> None:
        """Scan the chat messages or embedding inputs of the request."""
        tenant = ctx.principal.tenant if ctx.principal is not None else None
        detected: dict[str, list[Finding]] = {}
        worst = 0.0
        flagged: list[tuple[str, str, list[str]]] = []
        messages = ctx.body.get("messages")
        for location, text, role in _texts(ctx.body):
            try:
                if text not in detected:
                    detected[text] = self._detect(text, tenant=tenant)
                found = [_at(f, location) for f in detected[text]]
                verdict = self._injection.score(text, source=_source(role)) if self._injection else None
            except BastionError:
                raise
            except Exception as exc:
                log.error("inspection failed: %s", type(exc).__name__)
                ctx.decide(self.name, "error", "a detector failed; the request is refused")
                raise ServiceUnavailable("The request could not be inspected, so it was not sent.",
                                         code="inspection_failed") from exc
            ctx.findings.extend(found)
            if verdict is not None:
                worst = max(worst, verdict.score)
                if verdict.flagged:
                    flagged.append((location, verdict.kind or "prompt_injection", verdict.reasons))
        ctx.state[DETECTED_STATE] = detected
        ctx.state[INJECTION_STATE] = round(worst * 100)
        types = sorted({f.type for f in ctx.findings})
        if types:
            ctx.decide(self.name, "found", f"sensitive data found: {', '.join(types)}", types=types)
        if flagged:
            for location, kind, _ in flagged:
                ctx.findings.append(Finding(type="PROMPT_INJECTION", start=0, end=0, score=worst, detector="injection",
                                            data_classes=("attack",), explanation=kind, location=location))
            reasons = sorted({r for _, _, rs in flagged for r in rs})[:5]
            ctx.decide(self.name, "block", "prompt injection: " + "; ".join(reasons), kinds=[k for _, k, _ in flagged])
            raise ContentFiltered(
                "The request was refused because it looks like an attempt to override the assistant's "
                "instructions. Rephrase it; quote the request id to your security team if this is wrong.",
                details={"types": ["PROMPT_INJECTION"]},
            )
        if isinstance(messages, list) and not flagged:
            ctx.decide(self.name, "allow", f"injection score {round(worst * 100)}%")


class TransformStage:
    """Applies the protection actions policy chose to the chat messages."""

    name = "transform"

    def __init__(self, detect: Detect, settings: ProtectionSettings, *, hasher: Hasher, vault: Vault) -> None:
        self._detect = detect
        self._settings = settings
        self._base = settings.actions.input_policy()
        self._hasher = hasher
        self._vault = vault

    def _policy(self, ctx: RequestContext) -> ActionPolicy:
        decision = ctx.state.get("policy_decision")
        chosen: Mapping[str, str] = getattr(decision, "protection", None) or {}
        return merge_policy(self._base, chosen)

    async def __call__(self, ctx: RequestContext) -> None:
        """Protect the request body in place of the original."""
        principal = ctx.principal
        tenant = principal.tenant if principal is not None else None
        detected: dict[str, list[Finding]] = ctx.state.get(DETECTED_STATE) or {}

        def detect(text: str) -> list[Finding]:
            found = detected.get(text)
            return list(found) if found is not None else self._detect(text, tenant=tenant)

        policy = self._policy(ctx)
        if "messages" not in ctx.body:
            self._protect_inputs(ctx, detect, policy, tenant)
            return
        conversation = derive_conversation_id(
            tenant=tenant, subject=principal.subject if principal else "", explicit=ctx.state.get(CONVERSATION_STATE),
            messages=ctx.body["messages"],
        )
        try:
            result = await protect_messages(ctx.body, detect, policy, tenant=tenant, hasher=self._hasher,
                                            vault=self._vault, conversation_id=conversation)
        except ContentFiltered as exc:
            ctx.decide(self.name, "block", "blocked data types: " + ", ".join(exc.details.get("types", [])))
            raise
        body = dict(result.body)
        body["messages"] = [_spotlit(m) for m in body["messages"]]
        # A canary guards a system prompt; with none, there is nothing to leak.
        has_system = any(isinstance(m, dict) and m.get("role") in ("system", "developer") for m in body["messages"])
        if self._settings.canary.enabled and has_system:
            canary = Canary.new()
            body["messages"] = insert_canary(body["messages"], canary)
            ctx.state[CANARY_STATE] = canary
        ctx.body = body
        if result.applied:
            ctx.state[PSEUDONYMS_STATE] = await self._vault.values(conversation)
            done = sorted({f"{a.type}:{a.action}" for a in result.applied})
            ctx.decide(self.name, "protect", "protected before sending: " + ", ".join(done), actions=done)

    def _protect_inputs(self, ctx: RequestContext, detect: Callable[[str], list[Finding]], policy: ActionPolicy,
                        tenant: str | None) -> None:
        # Embedding inputs: no answer comes back to restore, so pseudonyms become plain redaction.
        flat = policy.without_pseudonyms()
        raw = ctx.body.get("input")
        inputs = [raw] if isinstance(raw, str) else list(raw or [])
        out: list[Any] = []
        applied: set[str] = set()
        for item in inputs:
            if not isinstance(item, str):
                out.append(item)
                continue
            protected = apply_actions(item, detect(item), flat, tenant=tenant, hasher=self._hasher)
            applied.update(f"{a.type}:{a.action}" for a in protected.applied)
            out.append(protected.text)
        ctx.body = {**ctx.body, "input": out[0] if isinstance(raw, str) else out}
        if applied:
            ctx.decide(self.name, "protect", "protected before sending: " + ", ".join(sorted(applied)))


def merge_policy(base: ActionPolicy, chosen: Mapping[str, str]) -> ActionPolicy:
    """The configured actions, overridden by the per-type (UPPER) and per-class (lower) choices of policy."""
    by_type = dict(base.by_type)
    by_class = dict(base.by_class)
    for key, action in chosen.items():
        (by_type if key.isupper() else by_class)[key] = action  # type: ignore[assignment]
    return ActionPolicy(default=base.default, by_type=by_type, by_class=by_class)


def _texts(body: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    messages = body.get("messages")
    if isinstance(messages, list):
        roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
        return [(location, text, roles[i]) for location, i, _path, text in message_texts(body)]
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else list(raw or [])
    return [(f"input[{i}]", x, "user") for i, x in enumerate(inputs) if isinstance(x, str)]


def _at(f: Finding, location: str) -> Finding:
    return Finding(type=f.type, start=f.start, end=f.end, score=f.score, detector=f.detector,
                   data_classes=f.data_classes, explanation=f.explanation, location=location)


def _spotlit(message: Any) -> Any:
    # Tool results are data, never instructions: mark them so the model can tell.
    if isinstance(message, dict) and message.get("role") == "tool" and isinstance(message.get("content"), str):
        return {**message, "content": spotlight(message["content"], "tool")}
    return message
