"""One governed tool call, whichever door it came through (MCP or REST).

    validate arguments -> scan them (data classes the tool may receive)
      -> policy (user x tool x arguments x findings) -> hold for approval?
      -> mint a token bound to the exact body -> call the backend
      -> scan the result (PII, secrets, injection) -> audit, always

A refusal at any step is audited too, with the arguments' hash, never the values.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bastion.audit.events import make_event
from bastion.context import Finding, Principal
from bastion.errors import BastionError, ContentFiltered, PermissionDenied
from bastion.policy.engine import PolicyEngine
from bastion.policy.model import PolicyDecision, PolicyRequest, findings_context
from bastion.protect.actions import ActionPolicy, apply_actions
from bastion.protect.injection.detector import InjectionDetector
from bastion.protect.spotlight import spotlight
from bastion.tools.approvals import ApprovalRecord, ApprovalStore, HeldCall, WebhookNotifier
from bastion.tools.config import ToolProxySettings
from bastion.tools.credentials import ToolCredentials
from bastion.tools.mcp.client import McpToolClient
from bastion.tools.registry import CALL_TOOL, RegisteredTool, ToolRegistry
from bastion.tools.rest import HttpToolClient
from bastion.tools.tokens import narrow_scopes, user_scopes

log = logging.getLogger("bastion.tools")

Channel = Literal["rest", "mcp"]
#: Data classes no tool receives in its arguments unless it declares them.
_REDACT_ALL = ActionPolicy(default="redact")
#: Said in place of content the proxy cannot inspect (images, audio, binary resources).
WITHHELD_NOTICE = "[content withheld by Bastion: it cannot be inspected]"

ScanText = Callable[[str], Sequence[Finding]]
AuditAppend = Callable[[dict[str, Any]], Awaitable[int]]


def arguments_sha256(arguments: Any) -> str:
    """The hex SHA-256 of the canonical JSON of ``arguments`` (what audit events record)."""
    canon = json.dumps(arguments, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class ToolCall:
    """One request to call a tool, as either door received it."""

    principal: Principal
    tool: str
    arguments: dict[str, Any]
    request_id: str
    channel: Channel
    actor: str
    workflow_id: str | None = None
    #: The caller's own identity-provider token, used only for ``token_mode: exchange``.
    subject_token: str | None = None


@dataclass(slots=True)
class ToolOutcome:
    """What became of a call: ``done`` (with the protected result) or ``held`` for approval."""

    status: Literal["done", "held"]
    tool: str
    request_id: str
    #: REST: ``{"status", "content"}``; MCP: a ``CallToolResult`` in wire form.
    result: Any = None
    is_error: bool = False
    approval: ApprovalRecord | None = None
    flags: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Guarded:
    """A text after the result checks: maybe redacted, maybe spotlighted, with what was found."""

    text: str
    findings: list[dict[str, Any]]
    flags: list[str]
    injection_score: float


class ToolProxy:
    """Runs tool calls through validation, protection, policy, approval, token minting and audit."""

    def __init__(
        self,
        registry: ToolRegistry,
        *,
        engine: Callable[[], PolicyEngine],
        credentials: ToolCredentials,
        http_tools: HttpToolClient,
        mcp_tools: McpToolClient,
        scan: ScanText,
        injection: InjectionDetector,
        approvals: ApprovalStore,
        notifier: WebhookNotifier,
        audit: AuditAppend,
        settings: ToolProxySettings,
    ) -> None:
        self.registry = registry
        self._engine = engine
        self._credentials = credentials
        self._http_tools = http_tools
        self.mcp_tools = mcp_tools
        self._scan = scan
        self._injection = injection
        self.approvals = approvals
        self._notifier = notifier
        self._audit = audit
        self.settings = settings

    # -- the checks before a call --------------------------------------------------------

    def _check_arguments(self, tool: RegisteredTool, call: ToolCall) -> list[Finding]:
        tool.validate(call.arguments)
        text = json.dumps(call.arguments, ensure_ascii=False)
        findings = list(self._scan(text))
        allowed = set(tool.settings.data_classes)
        refused = sorted({c for f in findings for c in f.data_classes if c not in allowed})
        if refused:
            # Nothing sensitive goes to a tool that may not receive it; the types are named, never the values.
            raise ContentFiltered(
                "The tool arguments contain data this tool may not receive.",
                code="sensitive_arguments",
                details={"data_classes": refused, "types": sorted({f.type for f in findings})},
            )
        return findings

    def decide(self, principal: Principal, tool: RegisteredTool, findings: Sequence[Finding], *,
               approved: bool = False) -> PolicyDecision:
        """Policy's answer for ``principal`` calling ``tool`` with arguments that held ``findings``."""
        context: dict[str, Any] = {**findings_context(findings), "approved": approved}
        return self._engine().decide(PolicyRequest(principal, CALL_TOOL, tool.resource(), context))

    def _needs_approval(self, tool: RegisteredTool, decision: PolicyDecision) -> bool:
        return decision.require_approval or tool.settings.action in self.settings.approval_actions

    # -- the doors ------------------------------------------------------------------------

    async def invoke(self, call: ToolCall) -> ToolOutcome:
        """Run ``call``, or hold it for approval; every end is audited."""
        started = time.perf_counter()
        digest = arguments_sha256(call.arguments)
        decision: PolicyDecision | None = None
        try:
            tool = self.registry.get(call.tool)
            if not tool.settings.is_enabled:
                raise PermissionDenied(
                    f"The tool {tool.name!r} is not enabled; an administrator must enable it.", code="tool_disabled"
                )
            # Scopes first, so a client can step up (insufficient_scope) before anyone is asked to approve.
            narrow_scopes(tool.settings, None, user_scopes(call.principal))
            findings = self._check_arguments(tool, call)
            decision = self.decide(call.principal, tool, findings)
            if not decision.allowed and not decision.require_approval:
                decision.raise_if_refused()
            if self._needs_approval(tool, decision):
                return await self._hold(call, tool, decision, findings, digest)
            outcome = await self._execute(call, tool)
        except BastionError as exc:
            await self._record(call, digest, decision, outcome=_outcome_of(exc), error=exc.code, started=started)
            raise
        await self._record(call, digest, decision, outcome="error" if outcome.is_error else "ok",
                           flags=outcome.flags, started=started)
        return outcome

    async def execute_approved(self, approval_id: str, principal: Principal, *, request_id: str) -> ToolOutcome:
        """Run an approved call once; only its requester may (the first to claim it wins)."""
        current = await self.approvals.get(approval_id)
        if current is None or current.requester != principal.subject:
            raise PermissionDenied("No such approval request, or it is not yours.", code="approval_not_found")
        record, arguments = await self.approvals.claim(approval_id)
        call = ToolCall(
            principal=principal, tool=record.tool, arguments=arguments, request_id=request_id,
            channel="rest", actor=self.settings.default_actor, workflow_id=record.workflow_id,
        )
        return await self._run_claimed(call, record)

    async def _run_claimed(self, call: ToolCall, record: ApprovalRecord) -> ToolOutcome:
        started = time.perf_counter()
        digest = arguments_sha256(call.arguments)
        decision: PolicyDecision | None = None
        trail = _trail(record)
        try:
            tool = self.registry.get(record.tool)
            if digest != record.arguments_sha256:
                raise PermissionDenied("The held arguments changed.", code="approval_mismatch")
            findings = self._check_arguments(tool, call)
            # Asked again, with the approval: a policy change since the request still counts.
            decision = self.decide(call.principal, tool, findings, approved=True)
            decision.raise_if_refused()
            outcome = await self._execute(call, tool)
        except BastionError as exc:
            await self.approvals.finish(record.id, ok=False, outcome={"error": exc.code})
            await self._record(call, digest, decision, outcome=_outcome_of(exc), error=exc.code, started=started,
                               approval=trail)
            raise
        final = await self.approvals.finish(
            record.id, ok=not outcome.is_error, outcome={"is_error": outcome.is_error, "flags": outcome.flags}
        )
        outcome.approval = final
        await self._record(call, digest, decision, outcome="error" if outcome.is_error else "ok",
                           flags=outcome.flags, started=started, approval=trail)
        return outcome

    async def _hold(self, call: ToolCall, tool: RegisteredTool, decision: PolicyDecision,
                    findings: Sequence[Finding], digest: str) -> ToolOutcome:
        reason = " ".join(decision.reasons) if decision.require_approval else (
            f"{tool.settings.action.capitalize()} actions need an approver's approval."
        )
        record = await self.approvals.create(HeldCall(
            principal=call.principal, tool=tool.name, action=tool.settings.action, arguments=call.arguments,
            arguments_redacted=_redacted_arguments(call.arguments, self._scan), arguments_sha256=digest,
            reason=reason, request_id=call.request_id, policy_version=decision.version, workflow_id=call.workflow_id,
            channel=call.channel,
        ))
        await self._audit(make_event(
            "approval", request_id=call.request_id, approval_id=record.id, step="requested", tool=tool.name,
            principal=call.principal.to_audit(), reason=reason, arguments_sha256=digest,
            policy_version=decision.version, policies=list(decision.policies),
            findings=[f.to_audit() for f in findings],
        ))
        self._notifier.notify("approval.requested", record)
        return ToolOutcome("held", tool.name, call.request_id, approval=record)

    async def record_decision(self, record: ApprovalRecord, reviewer: Principal) -> None:
        """Audit and announce a reviewer's decision."""
        await self._audit(make_event(
            "approval", request_id=record.request_id, approval_id=record.id, step=record.state, tool=record.tool,
            reviewer=reviewer.to_audit(), requester=record.requester, comment=record.comment,
            arguments_sha256=record.arguments_sha256,
        ))
        self._notifier.notify(f"approval.{record.state}", record)

    # -- the call itself ----------------------------------------------------------------

    async def _execute(self, call: ToolCall, tool: RegisteredTool) -> ToolOutcome:
        async def bearer_for(body: bytes) -> str:
            return await self._credentials.token_for(
                call.principal, tool.settings, actor=call.actor, scopes=None, request_id=call.request_id,
                body=body, subject_token=call.subject_token,
            )

        if tool.settings.kind == "http":
            result = await self._http_tools.call(
                tool.settings, call.arguments, bearer_for=bearer_for, request_id=call.request_id
            )
            guarded = self._guard(tool, result.text)
            content: Any = result.as_json() if guarded.text == result.text else _maybe_json(guarded.text)
            return ToolOutcome("done", tool.name, call.request_id, is_error=result.is_error, flags=guarded.flags,
                               result={"status": result.status, "content": content, "flags": guarded.flags,
                                       "findings": guarded.findings})
        wire = await self.mcp_tools.call(tool.settings, call.arguments, bearer_for=bearer_for,
                                          request_id=call.request_id)
        protected, flags = self._guard_mcp(tool, wire)
        return ToolOutcome("done", tool.name, call.request_id, result=protected,
                           is_error=bool(protected.get("isError")), flags=flags)

    def _guard(self, tool: RegisteredTool, text: str) -> Guarded:
        """Redact what the tool may not return, and spotlight or withhold what looks like an injection."""
        allowed = set(tool.settings.data_classes)
        findings = [f for f in self._scan(text) if not set(f.data_classes) <= allowed or not f.data_classes]
        flags: list[str] = []
        if findings:
            text = apply_actions(text, findings, _REDACT_ALL).text
            flags.append("redacted")
        verdict = self._injection.score(text, source="tool")
        if verdict.flagged:
            flags.append("injection")
            if self.settings.result_injection == "block":
                text = "[tool result withheld by Bastion: it looks like a prompt injection]"
            else:
                text = spotlight(text, "tool")
        return Guarded(text, [f.to_audit() for f in findings], flags, verdict.score)

    def _guard_mcp(self, tool: RegisteredTool, wire: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        flags: set[str] = set()
        blocks: list[dict[str, Any]] = []
        for block in wire.get("content") or []:
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                g = self._guard(tool, block["text"])
                flags.update(g.flags)
                blocks.append({"type": "text", "text": g.text})
            else:
                flags.add("withheld")
                blocks.append({"type": "text", "text": WITHHELD_NOTICE})
        out: dict[str, Any] = {"content": blocks, "isError": bool(wire.get("isError"))}
        structured = wire.get("structuredContent")
        if structured is not None:
            raw = json.dumps(structured, ensure_ascii=False)
            g = self._guard(tool, raw)
            flags.update(g.flags)
            # A changed copy may no longer be valid JSON of the declared shape: keep only the untouched one.
            if g.text == raw:
                out["structuredContent"] = structured
        return out, sorted(flags)

    async def _record(
        self, call: ToolCall, digest: str, decision: PolicyDecision | None, *, outcome: str, started: float,
        error: str | None = None, flags: Sequence[str] = (), approval: dict[str, Any] | None = None,
    ) -> None:
        event = make_event(
            "tool_call", request_id=call.request_id, tool=call.tool, channel=call.channel,
            principal=call.principal.to_audit(), actor=call.actor, workflow_id=call.workflow_id,
            arguments_sha256=digest, outcome=outcome, error=error, flags=list(flags),
            decision=decision.to_audit() if decision is not None else None,
            policy_version=decision.version if decision is not None else None,
            approval=approval, latency_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        await self._audit(event)


def _outcome_of(exc: BastionError) -> str:
    """``refused`` when Bastion or policy said no, ``failed`` when the backend or a dependency did."""
    return "failed" if exc.status_code >= 500 else "refused"


def _trail(record: ApprovalRecord) -> dict[str, Any]:
    return {
        "approval_id": record.id, "requested_by": record.requester, "requested_at": record.created_at,
        "decided_by": record.decided_by, "decided_at": record.decided_at, "comment": record.comment,
    }


def _maybe_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _redacted_arguments(arguments: Any, scan: ScanText) -> Any:
    """A copy of ``arguments`` with every sensitive string value redacted (for the approval queue)."""
    if isinstance(arguments, dict):
        return {k: _redacted_arguments(v, scan) for k, v in arguments.items()}
    if isinstance(arguments, list):
        return [_redacted_arguments(v, scan) for v in arguments]
    if isinstance(arguments, str):
        findings = list(scan(arguments))
        return apply_actions(arguments, findings, _REDACT_ALL).text if findings else arguments
    return arguments
