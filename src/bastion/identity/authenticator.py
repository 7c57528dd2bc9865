"""Who is calling: the request's credential, checked by the right verifier; the identify stage."""

from __future__ import annotations

from bastion.context import Principal, RequestContext
from bastion.errors import AuthenticationFailed, BastionError
from bastion.identity.apikeys import KeyStore
from bastion.identity.keyformat import KEY_PREFIX
from bastion.identity.oidc import OIDCVerifier

#: Longest Authorization or x-api-key header value looked at, in bytes.
MAX_CREDENTIAL_BYTES = 32 * 1024

_REALM = 'Bearer realm="bastion"'
_REALM_INVALID = 'Bearer realm="bastion", error="invalid_token"'


def _with_challenge(exc: AuthenticationFailed) -> AuthenticationFailed:
    """Add the RFC 6750 challenge a 401 must carry, unless the raiser set one."""
    if "WWW-Authenticate" not in exc.headers:
        missing = exc.code == "missing_credentials"
        exc.headers = {**exc.headers, "WWW-Authenticate": _REALM if missing else _REALM_INVALID}
    return exc


class Authenticator:
    """Turns the Authorization / x-api-key headers into a Principal, or refuses."""

    def __init__(self, keys: KeyStore | None, oidc: OIDCVerifier | None = None) -> None:
        self._keys = keys
        self._oidc = oidc

    def _bad_credential_code(self) -> str:
        # When only API keys are possible, say so in the code clients already know.
        return "invalid_token" if self._oidc is not None else "invalid_api_key"

    def _credential(self, authorization: str | None, x_api_key: str | None) -> str:
        for value in (authorization, x_api_key):
            if value is not None and len(value) > MAX_CREDENTIAL_BYTES:
                raise AuthenticationFailed("The credential is too large.", code=self._bad_credential_code())
        bearer: str | None = None
        if authorization is not None and authorization.strip():
            scheme, _, rest = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not rest.strip():
                raise AuthenticationFailed(
                    "Send credentials as 'Authorization: Bearer <key or token>'.",
                    code=self._bad_credential_code(),
                )
            bearer = rest.strip()
        key = x_api_key.strip() if x_api_key is not None and x_api_key.strip() else None
        if bearer is not None and key is not None and bearer != key:
            raise AuthenticationFailed(
                "Send one credential: either Authorization or x-api-key, not two different ones.",
                code=self._bad_credential_code(),
            )
        credential = bearer or key
        if credential is None:
            raise AuthenticationFailed(
                "No credentials: send 'Authorization: Bearer <key or token>'.",
                code="missing_credentials",
            )
        return credential

    async def authenticate(self, authorization: str | None, x_api_key: str | None = None) -> Principal:
        """The verified caller for these request headers; raises AuthenticationFailed."""
        try:
            credential = self._credential(authorization, x_api_key)
            if credential.startswith(KEY_PREFIX):
                if self._keys is None:
                    raise AuthenticationFailed("API keys are not accepted here.", code="invalid_api_key")
                return await self._keys.authenticate_async(credential)
            if self._oidc is not None:
                return await self._oidc.verify(credential)
            raise AuthenticationFailed("The API key is not valid.", code="invalid_api_key")
        except AuthenticationFailed as exc:
            raise _with_challenge(exc) from None


class IdentifyStage:
    """The first stage: sets ``ctx.principal`` from the credentials, or stops the request."""

    name = "identify"

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    async def __call__(self, ctx: RequestContext) -> None:
        """Identify the caller of ``ctx``."""
        try:
            principal = await self._authenticator.authenticate(
                ctx.state.get("authorization"), ctx.state.get("x_api_key")
            )
        except BastionError as exc:
            # Recorded for the audit trail; an unreachable IdP is a refusal too, not a pass.
            ctx.decide(self.name, "deny", f"authentication failed ({exc.code})")
            raise
        ctx.principal = principal
        if principal.auth_method == "api_key":
            ctx.decide(self.name, "allow", f"api key {principal.key_id}")
        else:
            ctx.decide(self.name, "allow", f"oidc token from {principal.issuer}")
