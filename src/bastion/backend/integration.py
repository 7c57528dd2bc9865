"""Starlette and FastAPI: read the bearer token and the body, verify, hand back the caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import anyio.to_thread
from starlette.exceptions import HTTPException
from starlette.requests import Request

from bastion.backend.errors import BastionTokenError
from bastion.backend.verifier import BastionTokenVerifier, VerifiedCaller

#: Largest request body read for hashing, in bytes.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: Where the verified caller is kept on ``request.state``.
STATE_ATTRIBUTE = "bastion_caller"


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header, or "" when there is none."""
    if not authorization:
        return ""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(status_code=413, detail="request body too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(status_code=413, detail="request body too large")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # so the handler can still call request.body() / request.json()
    return body


async def get_bastion_caller(
    request: Request, verifier: BastionTokenVerifier, scopes: Iterable[str] = ()
) -> VerifiedCaller:
    """Verify the request's token against its body and ``scopes``; HTTPException if refused.

    401 for a bad or missing token, 403 ``insufficient_scope`` when the token
    lacks one of ``scopes``, 503 when the verifier cannot decide.
    """
    token = bearer_token(request.headers.get("authorization"))
    body = await _read_body(request)
    try:
        if verifier.needs_fetch(token):
            # Fetching the key set blocks; keep it off the event loop.
            caller = await anyio.to_thread.run_sync(lambda: verifier.verify(token, body=body))
        else:
            caller = verifier.verify(token, body=body)
    except BastionTokenError as exc:
        headers = {"WWW-Authenticate": exc.www_authenticate} if exc.status_code == 401 else None
        raise HTTPException(status_code=exc.status_code, detail=exc.reason, headers=headers) from None
    missing = sorted(s for s in scopes if not caller.has_scope(s))
    if missing:
        challenge = f'Bearer realm="bastion", error="insufficient_scope", scope="{" ".join(missing)}"'
        raise HTTPException(status_code=403, detail="insufficient_scope", headers={"WWW-Authenticate": challenge})
    setattr(request.state, STATE_ATTRIBUTE, caller)
    return caller


def require_bastion_caller(
    verifier: BastionTokenVerifier, scopes: Iterable[str] = ()
) -> Callable[[Request], Awaitable[VerifiedCaller]]:
    """A dependency for FastAPI's ``Depends`` that is also awaitable from a Starlette handler."""
    needed = tuple(scopes)

    async def bastion_caller(request: Request) -> VerifiedCaller:
        return await get_bastion_caller(request, verifier, needed)

    return bastion_caller
