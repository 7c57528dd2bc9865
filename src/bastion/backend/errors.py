"""The one exception the backend module raises, with a machine-readable reason."""

from __future__ import annotations

from typing import Literal

Reason = Literal[
    "missing_token",
    "malformed_token",
    "wrong_token_type",
    "algorithm_not_allowed",
    "unknown_key",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "lifetime_too_long",
    "wrong_audience",
    "wrong_issuer",
    "missing_claim",
    "replayed",
    "body_mismatch",
    "replay_unavailable",
    "jwks_unavailable",
]

#: Reasons that are the verifier's own trouble, not the caller's: answered with 503.
UNAVAILABLE_REASONS: frozenset[str] = frozenset({"jwks_unavailable", "replay_unavailable"})


class BastionTokenError(Exception):
    """A Bastion tool token was missing or refused; ``reason`` says why."""

    def __init__(self, reason: Reason, message: str = "") -> None:
        self.reason: Reason = reason
        self.message = message or reason.replace("_", " ")
        super().__init__(f"{reason}: {self.message}")

    @property
    def status_code(self) -> int:
        """401 for a token the caller must replace, 503 when the verifier cannot decide."""
        return 503 if self.reason in UNAVAILABLE_REASONS else 401

    @property
    def www_authenticate(self) -> str:
        """The RFC 6750 challenge for a 401 answer."""
        if self.reason == "missing_token":
            return 'Bearer realm="bastion"'
        return f'Bearer realm="bastion", error="invalid_token", error_description="{self.reason}"'
