"""The providers and models this gateway knows, built once from settings."""

from __future__ import annotations

from dataclasses import dataclass

from bastion.errors import ConfigError, UnknownModel
from bastion.providers.anthropic import AnthropicProvider
from bastion.providers.base import Provider
from bastion.providers.echo import EchoProvider
from bastion.providers.fallback import with_fallbacks
from bastion.providers.openai_compat import OpenAICompatibleProvider
from bastion.providers.secrets import SecretResolver
from bastion.settings import ModelSettings, Settings


@dataclass(frozen=True, slots=True)
class Route:
    """Where a model's requests go."""

    model: ModelSettings
    provider: Provider

    @property
    def upstream_model(self) -> str:
        """The provider's own name for the model."""
        return self.model.upstream_model or self.model.name


class ProviderRegistry:
    """Maps each configured model to its provider."""

    def __init__(self, providers: dict[str, Provider], models: list[ModelSettings]) -> None:
        self.providers = providers
        self._routes = {m.name: Route(m, providers[m.provider]) for m in models}

    @classmethod
    def from_settings(cls, settings: Settings, secrets: SecretResolver) -> ProviderRegistry:
        """Build every provider; a provider whose named credential is missing is a start-up error."""
        providers: dict[str, Provider] = {}
        for p in settings.providers:
            if p.type == "echo":
                providers[p.name] = EchoProvider(p.name)
                continue
            key = secrets.get(p.api_key_env)
            if p.api_key_env and key is None:
                raise ConfigError(
                    f"provider {p.name!r}: the credential {p.api_key_env} is not set in the environment "
                    "or the secrets file"
                )
            if p.type == "anthropic":
                providers[p.name] = AnthropicProvider(p, key, max_response_bytes=settings.server.max_response_bytes)
                continue
            providers[p.name] = OpenAICompatibleProvider(p, key, max_response_bytes=settings.server.max_response_bytes)
        # Providers serving a model with fallbacks are wrapped, so a failure can go on to a fallback.
        return cls(with_fallbacks(providers, settings.models), list(settings.models))

    def route(self, model: str, kind: str) -> Route:
        """The route for ``model``, which must serve ``kind`` requests."""
        route = self._routes.get(model)
        if route is None or route.model.kind != kind:
            raise UnknownModel(f"The model '{model[:128]}' does not exist or you do not have access to it.",
                               param="model")
        return route

    def models(self) -> list[ModelSettings]:
        """Every configured model."""
        return [r.model for r in self._routes.values()]

    async def aclose(self) -> None:
        """Close every provider."""
        for p in self.providers.values():
            await p.aclose()
