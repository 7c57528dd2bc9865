"""The core decide-and-route stages: the model must exist, the caller may use it, it goes to its provider."""

from __future__ import annotations

from bastion.context import RequestContext
from bastion.errors import UnknownModel
from bastion.providers.registry import ProviderRegistry


class ModelAccessStage:
    """Refuses models that do not exist, serve another endpoint, or the caller's credential excludes."""

    name = "model_access"

    def __init__(self, registry: ProviderRegistry, kind: str) -> None:
        self._registry = registry
        self._kind = kind

    async def __call__(self, ctx: RequestContext) -> None:
        """Check the model against the registry and the principal's credential."""
        model = ctx.model or ""
        route = self._registry.route(model, self._kind)
        principal = ctx.principal
        if principal is None or not principal.may_use_model(route.model.name):
            # Same answer as for a model that does not exist: no probing for model names.
            ctx.decide(self.name, "deny", "the credential does not allow this model")
            raise UnknownModel(f"The model '{model[:128]}' does not exist or you do not have access to it.",
                               param="model")
        ctx.decide(self.name, "allow", "model allowed for this credential")


class RouteStage:
    """Picks the provider that serves the model."""

    name = "route"

    def __init__(self, registry: ProviderRegistry, kind: str) -> None:
        self._registry = registry
        self._kind = kind

    async def __call__(self, ctx: RequestContext) -> None:
        """Record the chosen provider and the provider's model name in the context."""
        route = self._registry.route(ctx.model or "", self._kind)
        ctx.provider = route.provider.name
        ctx.upstream_model = route.upstream_model
        ctx.decide(self.name, "route", f"served by provider {route.provider.name}")
