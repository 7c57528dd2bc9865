"""Audit events as plain JSON-able dicts: one per request, and generic ones for other kinds."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any, Literal

from bastion.audit.chain import sha256_hex
from bastion.context import RequestContext

ContentMode = Literal["redacted", "full", "hash", "none"]

#: Kinds are short lowercase words; they are stored in a 32-character column.
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_.]{0,31}$")

#: Keys the writer and the exports set themselves; an event may not bring its own.
RESERVED_KEYS = frozenset({"seq", "prev_hash", "hash"})

#: Kinds used by the exports for other records; no event may take them.
RESERVED_KINDS = frozenset({"checkpoint"})

#: Longest prompt or answer kept when the caller does not say otherwise, in characters.
DEFAULT_MAX_CONTENT_CHARS = 256 * 1024


def new_event_id() -> str:
    """A unique id for one audit event."""
    return "evt_" + uuid.uuid4().hex


def make_event(kind: str, **fields: Any) -> dict[str, Any]:
    """A new event of ``kind`` (e.g. ``admin``, ``alert``) with an id, a time and ``fields``."""
    if not KIND_PATTERN.match(kind) or kind in RESERVED_KINDS:
        raise ValueError(f"audit event kind {kind!r} is not a short lowercase word")
    bad = RESERVED_KEYS.intersection(fields)
    if bad:
        raise ValueError(f"audit event fields {sorted(bad)} are set by the writer")
    event: dict[str, Any] = {"kind": kind, "event_id": new_event_id(), "ts": time.time()}
    event.update(fields)
    return event


def _clip(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[:limit], True


def content_of(
    prompt: str | None,
    response: str | None,
    mode: ContentMode,
    max_chars: int = DEFAULT_MAX_CONTENT_CHARS,
) -> dict[str, Any]:
    """The content part of a request event for ``mode``."""
    out: dict[str, Any] = {"mode": mode}
    if mode == "none":
        return out
    for name, text in (("prompt", prompt), ("response", response)):
        if text is None:
            continue
        if mode == "hash":
            out[f"{name}_sha256"] = sha256_hex(text)
            continue
        kept, cut = _clip(text, max_chars)
        out[name] = kept
        if cut:
            # Say that it was cut and how long it was, so nobody mistakes a prefix for the whole.
            out[f"{name}_truncated"] = True
            out[f"{name}_chars"] = len(text)
    return out


def build_request_event(
    ctx: RequestContext,
    content_mode: ContentMode,
    *,
    max_content_chars: int = DEFAULT_MAX_CONTENT_CHARS,
) -> dict[str, Any]:
    """The audit event of one request, whatever its outcome: metadata, decisions, content."""
    principal = ctx.principal
    total_ns = max(0, time.perf_counter_ns() - ctx.started_ns)
    upstream_ns = min(ctx.upstream_ns, total_ns)
    return {
        "kind": "request",
        "event_id": new_event_id(),
        "ts": time.time(),
        "request_id": ctx.request_id,
        "received_at": ctx.received_at,
        "endpoint": ctx.endpoint,
        "client_ip": ctx.client_ip,
        "principal": principal.to_audit() if principal else None,
        # The key's id only; the key itself never reaches the context, let alone the log.
        "key_id": principal.key_id if principal else None,
        "model": ctx.model,
        "upstream_model": ctx.upstream_model,
        "provider": ctx.provider,
        "stream": ctx.stream,
        "status": ctx.status,
        "error_code": ctx.error_code,
        "decisions": [d.to_audit() for d in ctx.decisions],
        "findings": [f.to_audit() for f in ctx.findings],
        "usage": ctx.usage.to_audit(),
        "latency": {
            "total_ms": round(total_ns / 1e6, 3),
            "gateway_ms": round((total_ns - upstream_ns) / 1e6, 3),
            "upstream_ms": round(upstream_ns / 1e6, 3),
            "audit_ms": round(ctx.audit_ns / 1e6, 3),
        },
        "content": content_of(ctx.prompt_text, ctx.response_text, content_mode, max_content_chars),
    }
