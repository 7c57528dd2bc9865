"""Verify the tokens Bastion mints for tool calls, in the backend that receives them.

Depends only on PyJWT (with ``cryptography``); the Starlette/FastAPI helpers
also need Starlette. Nothing else of Bastion is imported::

    verifier = BastionTokenVerifier("https://bastion.example/.well-known/jwks.json",
                                    audience="https://hr.example", issuer="https://bastion.example")
    caller = verifier.verify(token, body=raw_body)      # plain function
    caller = await require_bastion_caller(verifier)(request)   # Starlette / FastAPI Depends
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bastion.backend.errors import BastionTokenError
from bastion.backend.jwks import JWKSCache
from bastion.backend.replay import MemoryReplayCache, RedisReplayCache, ReplayCache
from bastion.backend.verifier import BastionTokenVerifier, VerifiedCaller, verify_bastion_token

if TYPE_CHECKING:
    from bastion.backend.integration import get_bastion_caller, require_bastion_caller

__all__ = [
    "BastionTokenError",
    "BastionTokenVerifier",
    "JWKSCache",
    "MemoryReplayCache",
    "RedisReplayCache",
    "ReplayCache",
    "VerifiedCaller",
    "get_bastion_caller",
    "require_bastion_caller",
    "verify_bastion_token",
]


def __getattr__(name: str) -> Any:
    # The web helpers import Starlette; load them only when asked for.
    if name in ("require_bastion_caller", "get_bastion_caller"):
        from bastion.backend import integration

        return getattr(integration, name)
    raise AttributeError(name)
