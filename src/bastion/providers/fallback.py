"""Fallback routing: when a model's provider fails before answering, try the model's fallbacks in order.

A ``FallbackProvider`` wraps each provider that serves a model with
``fallbacks``; the registry hands it to the gateway in the provider's place,
so the request path is unchanged. Which fallbacks a request may use is the
request's own business: the ``FallbackStage`` (after ``route``) binds a
``FallbackScope`` for the request being served, holding a predicate built
from policy and the list its decisions go to. Outside a bound request no
fallback is tried at all (``deny_all``): a fallback that policy never saw
could send data where it must not go.

Only failures of the provider are retried (timeouts, 5xx, 429, unreachable,
overloaded, rejected credentials, unreadable answers), and a stream only
until its first chunk: after that, bytes may have reached the client. A
fallback that rejects the request is passed over; when nothing answers, the
caller gets the first failure.
Embeddings never fall back: vectors of two models do not mix.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bastion.context import Decision, RequestContext
from bastion.errors import BastionError, ConfigError, RateLimited, UpstreamFailed
from bastion.policy.model import findings_context
from bastion.policy.source import PROTECTION_STRICTNESS
from bastion.policy.stage import (
    CALLER_REGION_STATE_KEY,
    INJECTION_STATE_KEY,
    POLICY_STATE_KEY,
    REQUEST_BYTES_STATE_KEY,
)
from bastion.providers.base import ChunkStream, Provider, UpstreamRequest
from bastion.settings import ModelSettings

if TYPE_CHECKING:
    from bastion.policy.store import PolicyStore

log = logging.getLogger("bastion.providers.fallback")

#: Name of the stage, and of the decisions fallbacks record.
STAGE_NAME = "fallback"

ModelPredicate = Callable[[str], bool]


def allow_all(model: str) -> bool:
    """A predicate that allows every fallback model."""
    return True


def deny_all(model: str) -> bool:
    """A predicate that allows no fallback model."""
    return False


def is_retryable(exc: BaseException) -> bool:
    """Whether a failure is the provider's, so another provider may answer instead."""
    if isinstance(exc, UpstreamFailed):
        return True
    # Only the provider's own 429: the gateway's limits refuse before any provider is called.
    return isinstance(exc, RateLimited) and exc.code == "upstream_rate_limited"


@dataclass
class FallbackScope:
    """What the request being served allows, and where its fallback decisions are recorded."""

    request_id: str
    #: The model the request is for (after any policy reroute).
    model: str
    is_allowed: ModelPredicate = allow_all
    decisions: list[Decision] = field(default_factory=list)
    #: Called with the model and provider that answered, when a fallback did.
    on_answer: Callable[[ModelSettings, str, str], None] | None = None


_SCOPE: ContextVar[FallbackScope | None] = ContextVar("bastion_fallback_scope", default=None)


def bind_scope(scope: FallbackScope) -> None:
    """Make ``scope`` the fallback scope of the request this task is serving."""
    _SCOPE.set(scope)


def current_scope(request_id: str) -> FallbackScope | None:
    """The bound scope, if it belongs to ``request_id``."""
    scope = _SCOPE.get()
    # A scope is only trusted for its own request, should a context ever be shared.
    return scope if scope is not None and scope.request_id == request_id else None


@dataclass(frozen=True, slots=True)
class Target:
    """One place a model's requests can go: its settings and the provider itself (never a wrapper)."""

    model: ModelSettings
    provider: Provider

    @property
    def upstream_model(self) -> str:
        """The provider's own name for the model."""
        return self.model.upstream_model or self.model.name


class FallbackProvider:
    """A provider that, on a provider failure, tries the served model's fallbacks the request allows."""

    def __init__(
        self,
        primary: Provider,
        models: Sequence[ModelSettings],
        targets: Mapping[str, Target],
        *,
        default_is_allowed: ModelPredicate = allow_all,
    ) -> None:
        self.name = primary.name
        self.type = primary.type
        self._primary = primary
        self._models = {m.name: m for m in models}
        # Without a bound scope the model is found by the provider's name for it.
        self._by_upstream = {(m.upstream_model or m.name, m.kind): m for m in reversed(models)}
        self._targets = targets
        self._default = default_is_allowed

    def _plan(self, req: UpstreamRequest) -> tuple[list[Target], FallbackScope | None]:
        scope = current_scope(req.request_id)
        model = self._models.get(scope.model) if scope is not None else None
        if model is None:
            model = self._by_upstream.get((req.upstream_model, "chat"))
        if model is None or not model.fallbacks:
            return [], scope
        return [Target(model, self._primary), *(self._targets[name] for name in model.fallbacks)], scope

    def _allowed(self, scope: FallbackScope | None, target: Target) -> bool:
        predicate = scope.is_allowed if scope is not None else self._default
        try:
            return predicate(target.model.name)
        except Exception:  # noqa: BLE001 - a predicate that fails allows nothing (fail closed)
            log.exception("fallback predicate failed for model %s", target.model.name)
            return False

    def _note(self, scope: FallbackScope | None, effect: str, reason: str, target: Target, **data: Any) -> None:
        if scope is not None:
            scope.decisions.append(Decision(STAGE_NAME, effect, reason, data={
                "model": target.model.name, "provider": target.provider.name, **data}))

    def _failed(self, scope: FallbackScope | None, target: Target, exc: BastionError) -> None:
        reason = f"model {target.model.name} on provider {target.provider.name} failed ({exc.code})"
        self._note(scope, "upstream_failed", reason, target, code=exc.code)
        log.warning("request failed upstream: model=%s provider=%s code=%s",
                    target.model.name, target.provider.name, exc.code)

    def _answered(self, scope: FallbackScope | None, target: Target, failed: int) -> None:
        reason = f"answered by fallback model {target.model.name} on provider {target.provider.name} " \
                 f"after {failed} failed attempt(s)"
        self._note(scope, "fallback", reason, target, failed_attempts=failed)
        if scope is not None and scope.on_answer is not None:
            scope.on_answer(target.model, target.provider.name, target.upstream_model)

    def _usable(self, scope: FallbackScope | None, target: Target, first: bool) -> bool:
        if first or self._allowed(scope, target):
            return True
        self._note(scope, "skip", f"fallback model {target.model.name} is not allowed for this request", target)
        return False

    async def chat(self, req: UpstreamRequest) -> dict[str, Any]:
        """Answer from the model's provider, or from the first allowed fallback that answers."""
        plan, scope = self._plan(req)
        if not plan:
            return await self._primary.chat(req)
        last: BastionError | None = None
        failed = 0
        for i, target in enumerate(plan):
            if not self._usable(scope, target, i == 0):
                continue
            try:
                answer = await target.provider.chat(dataclasses.replace(req, upstream_model=target.upstream_model))
            except BastionError as exc:
                # The model asked for refusing the request is the caller's to fix; a fallback refusing
                # it (e.g. a feature its API lacks) only means that fallback cannot help.
                if i == 0 and not is_retryable(exc):
                    raise
                self._failed(scope, target, exc)
                last, failed = last or exc, failed + 1
                continue
            if i > 0:
                self._answered(scope, target, failed)
            return answer
        assert last is not None  # noqa: S101 - the first target is always tried
        raise last

    def chat_stream(self, req: UpstreamRequest) -> ChunkStream:
        """Stream from the first provider that produces a first chunk; later failures are not retried."""
        outer = ChunkStream()
        return outer.attach(self._stream(req, outer))

    async def _stream(self, req: UpstreamRequest, outer: ChunkStream) -> AsyncGenerator[dict[str, Any], None]:
        plan, scope = self._plan(req)
        if not plan:
            direct = self._primary.chat_stream(req)
            outer.probe = direct.ready if isinstance(direct, ChunkStream) else None
            try:
                async for chunk in direct:
                    yield chunk
            finally:
                await _close(direct)
            return
        last: BastionError | None = None
        failed = 0
        for i, target in enumerate(plan):
            if not self._usable(scope, target, i == 0):
                continue
            stream = target.provider.chat_stream(dataclasses.replace(req, upstream_model=target.upstream_model))
            try:
                first: dict[str, Any] | None = await stream.__anext__()
            except StopAsyncIteration:
                first = None
            except BastionError as exc:
                await _close(stream)
                # The model asked for refusing the request is the caller's to fix; a fallback refusing
                # it (e.g. a feature its API lacks) only means that fallback cannot help.
                if i == 0 and not is_retryable(exc):
                    raise
                self._failed(scope, target, exc)
                last, failed = last or exc, failed + 1
                continue
            except BaseException:
                await _close(stream)
                raise
            if i > 0:
                self._answered(scope, target, failed)
            outer.probe = stream.ready if isinstance(stream, ChunkStream) else None
            try:
                if first is not None:
                    yield first
                async for chunk in stream:
                    yield chunk
            finally:
                await _close(stream)
            return
        assert last is not None  # noqa: S101 - the first target is always tried
        raise last

    async def embeddings(self, req: UpstreamRequest) -> dict[str, Any]:
        """Embeddings go to the model's own provider only."""
        return await self._primary.embeddings(req)

    async def aclose(self) -> None:
        """Close the wrapped provider."""
        await self._primary.aclose()


async def _close(stream: AsyncIterator[Any]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # noqa: BLE001 - a broken stream's close must not hide the real failure
            log.debug("closing a failed upstream stream failed", exc_info=True)


def with_fallbacks(
    providers: Mapping[str, Provider],
    models: Sequence[ModelSettings],
    *,
    default_is_allowed: ModelPredicate = deny_all,
) -> dict[str, Provider]:
    """The providers, with those serving a model that has fallbacks wrapped; bad fallbacks are ConfigErrors."""
    by_name = {m.name: m for m in models}
    for m in models:
        for name in m.fallbacks:
            target = by_name.get(name)
            if target is None:
                raise ConfigError(f"model {m.name!r}: fallback {name!r} is not a configured model")
            if name == m.name or target.kind != m.kind:
                raise ConfigError(f"model {m.name!r}: fallback {name!r} must be another {m.kind} model")
            if m.kind != "chat":
                raise ConfigError(f"model {m.name!r}: only chat models may have fallbacks")
    targets = {m.name: Target(m, providers[m.provider]) for m in models}
    out = dict(providers)
    for name, provider in providers.items():
        served = [m for m in models if m.provider == name]
        if any(m.fallbacks for m in served):
            out[name] = FallbackProvider(provider, served, targets, default_is_allowed=default_is_allowed)
    return out


def protection_covers(applied: Mapping[str, str], needed: Mapping[str, str]) -> bool:
    """Whether the protection already applied is at least as strict as ``needed``, class by class."""
    for key, action in needed.items():
        want = PROTECTION_STRICTNESS.get(action)
        have = PROTECTION_STRICTNESS.get(applied.get(key, "allow"))
        if want is None or have is None or have < want:
            return False
    return True


class FallbackStage:
    """Binds the request's fallback scope: the fallbacks policy allows it, and its decision list."""

    name = STAGE_NAME

    def __init__(self, models: Sequence[ModelSettings], policies: PolicyStore | None = None) -> None:
        self._models = {m.name: m for m in models}
        self._policies = policies

    def _predicate(self, ctx: RequestContext) -> ModelPredicate:
        principal = ctx.principal
        policies = self._policies
        original = ctx.state.get(POLICY_STATE_KEY)
        context = findings_context(ctx.findings)
        for key in (INJECTION_STATE_KEY, REQUEST_BYTES_STATE_KEY, CALLER_REGION_STATE_KEY):
            if ctx.state.get(key) is not None:
                context[key] = ctx.state[key]

        def is_allowed(name: str) -> bool:
            candidate = self._models.get(name)
            if candidate is None or principal is None or not principal.may_use_model(name):
                return False
            if policies is None:
                return True
            engine = policies.engine
            decision = engine.decide(engine.request_for_model(principal, candidate, context))
            if not decision.allowed:
                return False
            # The prompt was already protected for the first model's decision; a fallback that
            # would need stricter protection cannot take it as it stands.
            applied = getattr(original, "protection", None) if original is not None else {}
            return isinstance(applied, dict) and protection_covers(applied, decision.protection)

        return is_allowed

    async def __call__(self, ctx: RequestContext) -> None:
        """Bind the scope for this request; the provider wrapper reads it when the first provider fails."""

        def on_answer(model: ModelSettings, provider: str, upstream_model: str) -> None:
            # What actually answered is what the audit records and the limits price.
            ctx.model, ctx.provider, ctx.upstream_model = model.name, provider, upstream_model

        bind_scope(FallbackScope(ctx.request_id, ctx.model or "", self._predicate(ctx), ctx.decisions, on_answer))
