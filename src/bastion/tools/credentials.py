"""The one call the tool proxy makes for a backend credential: mint, or exchange, per the tool's setting."""

from __future__ import annotations

from collections.abc import Iterable

from bastion.context import Principal
from bastion.errors import PermissionDenied
from bastion.tools.config import ToolSettings
from bastion.tools.exchange import TokenExchangeClient
from bastion.tools.tokens import ToolTokenMinter, narrow_scopes, user_scopes


class ToolCredentials:
    """Chooses, per tool, between a Bastion-minted token and one exchanged at the identity provider."""

    def __init__(self, minter: ToolTokenMinter, exchange: TokenExchangeClient | None = None) -> None:
        self.minter = minter
        self.exchange = exchange

    async def token_for(
        self,
        principal: Principal,
        tool: ToolSettings,
        *,
        actor: str,
        scopes: Iterable[str] | None,
        request_id: str,
        body: bytes,
        subject_token: str | None = None,
    ) -> str:
        """The bearer token to send to ``tool``'s backend for this one call.

        ``subject_token`` is the user's own token, needed only by tools with
        ``token_mode: exchange``; it is never sent anywhere but the token endpoint.
        """
        if tool.token_mode == "mint":  # noqa: S105 - a mode name
            return self.minter.mint_tool_token(
                principal, tool, actor=actor, scopes=scopes, request_id=request_id, body=body
            )
        if not tool.is_enabled:
            raise PermissionDenied(
                f"The tool {tool.name!r} is not enabled; an administrator must enable it.", code="tool_disabled"
            )
        if self.exchange is None:
            raise PermissionDenied("Token exchange is not configured for this tool.", code="token_exchange_denied")
        if not subject_token:
            # An API-key caller has no identity-provider token to exchange: refuse rather than mint.
            raise PermissionDenied(
                "This tool needs a sign-in with the company identity provider.", code="token_exchange_denied"
            )
        # Narrow first, so the identity provider is never even asked for more than the user holds.
        granted = narrow_scopes(tool, scopes, user_scopes(principal))
        exchanged = await self.exchange.exchange(subject_token, audience=tool.audience, scopes=granted)
        return exchanged.access_token
