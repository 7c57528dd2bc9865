"""OIDC bearer tokens: real keys, a real IdP on 127.0.0.1, and every way a token can be wrong."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from tests.support.idp import FakeIdP, make_key

from bastion.context import Principal, RequestContext
from bastion.errors import AuthenticationFailed, BastionError, ServiceUnavailable
from bastion.identity import Authenticator, IdentifyStage
from bastion.identity.oidc import MAX_JWKS_BYTES, MAX_TOKEN_BYTES, OIDCVerifier
from bastion.settings import OIDCIssuer

T = TypeVar("T")


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def idp() -> Iterator[FakeIdP]:
    with FakeIdP() as fake:
        yield fake


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _issuer(idp: FakeIdP, **overrides: Any) -> OIDCIssuer:
    return OIDCIssuer(**idp.issuer_config(**overrides))


def run(
    idp: FakeIdP,
    body: Callable[[OIDCVerifier], Awaitable[T]],
    clock: Clock | None = None,
    **overrides: Any,
) -> T:
    """Run ``body(verifier)`` with a verifier trusting ``idp`` (configured with ``overrides``)."""

    async def go() -> T:
        async with httpx.AsyncClient(trust_env=False) as http:
            kw: dict[str, Any] = {"clock": clock} if clock else {}
            return await body(OIDCVerifier([_issuer(idp, **overrides)], http, **kw))

    return asyncio.run(go())


def verify(idp: FakeIdP, token: str, **overrides: Any) -> Principal:
    """Verify one token with a fresh verifier."""
    return run(idp, lambda v: v.verify(token), **overrides)


def refused(idp: FakeIdP, token: str, code: str = "invalid_token", **overrides: Any) -> BastionError:
    """Verify ``token``, expect a refusal with ``code``, and check the token is not echoed."""
    with pytest.raises(BastionError) as info:
        verify(idp, token, **overrides)
    err = info.value
    assert err.code == code, err.message
    text = err.message + json.dumps(err.to_body())
    assert token not in text
    for part in token.split("."):
        if len(part) > 8:
            assert part not in text
    return err


# -- accepted tokens ---------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
def test_valid_token_of_each_algorithm_gives_a_principal(idp: FakeIdP, alg: str) -> None:
    idp.add_key(alg)
    token = idp.mint(sub="alice", email="alice@example.com", groups=["eng", "ops"], tid="acme")
    p = verify(idp, token)
    assert p.subject == "alice"
    assert p.auth_method == "oidc"
    assert p.issuer == idp.issuer
    assert p.email == "alice@example.com"
    assert p.groups == ("eng", "ops")
    assert p.tenant == "acme"
    assert p.key_id is None and p.allowed_models is None


@pytest.mark.parametrize(
    "claims, mapping, groups, roles",
    [
        ({"groups": "eng ops,  sre"}, {}, ("eng", "ops", "sre"), ()),
        ({"roles": ["admin"]}, {}, (), ("admin",)),
        ({"realm_access": {"roles": ["r1", "r2"]}}, {"roles": "realm_access.roles"}, (), ("r1", "r2")),
        ({"https://example.com/groups": ["g"]}, {"groups": "https://example.com/groups"}, ("g",), ()),
        ({"scp": "read write"}, {"roles": "scp"}, (), ("read", "write")),
        ({}, {"groups": "missing.path"}, (), ()),
    ],
)
def test_claims_map_to_groups_and_roles(
    idp: FakeIdP, claims: dict[str, Any], mapping: dict[str, str], groups: tuple[str, ...], roles: tuple[str, ...]
) -> None:
    idp.add_key("ES256")
    p = verify(idp, idp.mint(**claims), claims=mapping)
    assert (p.groups, p.roles) == (groups, roles)


def test_a_token_that_expired_within_the_clock_skew_is_still_accepted(idp: FakeIdP) -> None:
    idp.add_key("ES256")
    token = idp.mint(exp=int(time.time()) - 20)
    assert verify(idp, token, clock_skew_seconds=60).subject == "user-1"
    assert refused(idp, token, "expired_token", clock_skew_seconds=0)


def test_required_claims_can_drop_nbf_but_never_exp(idp: FakeIdP) -> None:
    idp.add_key("ES256")
    assert verify(idp, idp.mint(nbf=None), required_claims=["iss", "aud", "exp"]).subject == "user-1"
    err = refused(idp, idp.mint(exp=None), required_claims=["iss", "aud"])
    assert "exp" in err.message


def test_a_token_with_any_one_listed_audience_is_accepted(idp: FakeIdP) -> None:
    idp.add_key("RS256")
    assert verify(idp, idp.mint(aud=["other", "gw2"]), audience=["bastion", "gw2"]).subject == "user-1"


def test_configured_jwks_uri_skips_discovery(idp: FakeIdP) -> None:
    idp.add_key("EdDSA")
    assert verify(idp, idp.mint(), jwks_uri=idp.jwks_uri).subject == "user-1"
    assert idp.discovery_hits == 0 and idp.jwks_hits == 1


# -- refused tokens ----------------------------------------------------------------------


def _forged(idp: FakeIdP, header: dict[str, Any], sign: Callable[[bytes], bytes] | None = None) -> str:
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(idp.claims()).encode())
    sig = sign(signing_input.encode()) if sign else b""
    return signing_input + "." + _b64(sig)


@pytest.mark.parametrize(
    "case, make, message",
    [
        ("expired", lambda idp: idp.mint(exp=int(time.time()) - 3600), "expired"),
        ("not yet valid", lambda idp: idp.mint(nbf=int(time.time()) + 3600), "not valid yet"),
        ("missing nbf", lambda idp: idp.mint(nbf=None), "'nbf'"),
        ("missing exp", lambda idp: idp.mint(exp=None), "'exp'"),
        ("missing aud", lambda idp: idp.mint(aud=None), "'aud'"),
        ("missing sub", lambda idp: idp.mint(sub=None), "'sub'"),
        ("wrong issuer", lambda idp: idp.mint(iss="https://evil.example"), "issuer"),
        ("wrong audience", lambda idp: idp.mint(aud="someone-else"), "audience"),
        ("future iat", lambda idp: idp.mint(iat=int(time.time()) + 3600), "not valid"),
        ("not a jwt", lambda idp: "not-a-token-at-all", "well-formed"),
        ("alg none", lambda idp: _forged(idp, {"alg": "none", "typ": "JWT", "kid": idp.key().kid}), "algorithm"),
        ("alg None", lambda idp: _forged(idp, {"alg": "None", "kid": idp.key().kid}), "algorithm"),
        (
            "HS256 with the public key as secret",
            lambda idp: _forged(
                idp,
                {"alg": "HS256", "kid": idp.key().kid},
                lambda data: hmac.new(
                    idp.key().public.public_bytes(
                        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                    ),
                    data,
                    hashlib.sha256,
                ).digest(),
            ),
            "algorithm",
        ),
        (
            "signed by another key with the same kid",
            lambda idp: idp.mint(key=make_key("RS256", kid=idp.key().kid)),
            "signature",
        ),
        ("tampered payload", lambda idp: _tampered(idp.mint(sub="alice")), "signature"),
        ("crit header", lambda idp: idp.mint(headers={"crit": ["exp"]}), "well-formed"),
        ("oversized", lambda idp: idp.mint(pad="x" * MAX_TOKEN_BYTES), "larger"),
    ],
)
def test_bad_tokens_are_refused_without_echoing_them(
    idp: FakeIdP, case: str, make: Callable[[FakeIdP], str], message: str
) -> None:
    idp.add_key("RS256")
    token = make(idp)
    code = "expired_token" if case == "expired" else "invalid_token"
    err = refused(idp, token, code)
    assert message in err.message, err.message
    assert err.status_code == 401


def _tampered(token: str) -> str:
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "admin"
    return ".".join([head, _b64(json.dumps(claims).encode()), sig])


def test_oversized_token_is_refused_before_any_fetch(idp: FakeIdP) -> None:
    idp.add_key("ES256")
    refused(idp, idp.mint(pad="y" * MAX_TOKEN_BYTES))
    assert idp.jwks_hits == 0 and idp.discovery_hits == 0


def test_an_algorithm_the_issuer_does_not_allow_is_refused(idp: FakeIdP) -> None:
    idp.add_key("RS256")
    err = refused(idp, idp.mint(), algorithms=["ES256"])
    assert "algorithm" in err.message


def test_header_alg_must_fit_the_key_it_names(idp: FakeIdP) -> None:
    ec_key = idp.add_key("ES256")
    idp.add_key("RS256")
    # An ES256 token relabelled RS256, naming the EC key: the key type does not fit the algorithm.
    head, payload, sig = idp.mint(key=ec_key).split(".")
    header = {"alg": "RS256", "kid": ec_key.kid, "typ": "JWT"}
    err = refused(idp, ".".join([_b64(json.dumps(header).encode()), payload, sig]))
    assert "does not fit" in err.message


def test_jwk_alg_must_match_the_token_alg(idp: FakeIdP) -> None:
    # The published JWK says PS256; a token claiming RS256 with that same RSA key is refused.
    key = idp.add_key("PS256")
    token = idp.mint(key=key, alg="RS256")
    assert "does not fit" in refused(idp, token).message


def test_symmetric_keys_in_the_key_set_are_never_trusted(idp: FakeIdP) -> None:
    secret = b"shared-secret-shared-secret-0123"
    idp.jwks_override = {"keys": [{"kty": "oct", "kid": "h1", "k": _b64(secret), "alg": "HS256"}]}
    token = _forged(idp, {"alg": "HS256", "kid": "h1"}, lambda d: hmac.new(secret, d, hashlib.sha256).digest())
    refused(idp, token)


def test_token_without_kid_uses_the_only_fitting_key(idp: FakeIdP) -> None:
    idp.add_key("ES256")
    assert verify(idp, idp.mint(headers={"kid": None})).subject == "user-1"
    idp.add_key("ES256")
    assert "kid" in refused(idp, idp.mint(headers={"kid": None})).message


# -- key sets: caching, rotation, refetch limits -------------------------------------------


def test_unknown_kid_refetches_once_then_waits_for_the_window(idp: FakeIdP) -> None:
    old = idp.add_key("RS256")
    clock = Clock()

    async def body(v: OIDCVerifier) -> None:
        assert (await v.verify(idp.mint(key=old))).subject == "user-1"
        assert idp.jwks_hits == 1
        new = idp.rotate("ES256")
        # A token from the rotated key: one refetch finds it.
        assert (await v.verify(idp.mint(key=new, sub="bob"))).subject == "bob"
        assert idp.jwks_hits == 2
        # The withdrawn key is gone from the refetched set.
        with pytest.raises(AuthenticationFailed):
            await v.verify(idp.mint(key=old))
        # Another unknown kid inside the refetch window does not reach the IdP.
        with pytest.raises(AuthenticationFailed) as info:
            await v.verify(idp.mint(key=make_key("ES256", kid="never-published")))
        assert "does not know" in info.value.message
        assert idp.jwks_hits == 2
        # After the window, an unknown kid may refetch again.
        newer = idp.add_key("EdDSA")
        clock.now += 31
        assert (await v.verify(idp.mint(key=newer, sub="carol"))).subject == "carol"
        assert idp.jwks_hits == 3

    run(idp, body, clock, jwks_min_refetch_seconds=30)
    assert idp.discovery_hits == 1


def test_concurrent_requests_share_one_fetch(idp: FakeIdP) -> None:
    idp.add_key("ES256")
    idp.delay_seconds = 0.2

    async def body(v: OIDCVerifier) -> list[Principal]:
        tokens = [idp.mint(sub=f"u{i}") for i in range(10)]
        return list(await asyncio.gather(*(v.verify(t) for t in tokens)))

    principals = run(idp, body)
    assert sorted(p.subject for p in principals) == sorted(f"u{i}" for i in range(10))
    assert idp.jwks_hits == 1 and idp.discovery_hits == 1


def test_concurrent_unknown_kids_share_one_refetch(idp: FakeIdP) -> None:
    idp.add_key("ES256")

    async def body(v: OIDCVerifier) -> None:
        await v.verify(idp.mint())
        new = idp.add_key("ES256")
        idp.delay_seconds = 0.2
        got = await asyncio.gather(*(v.verify(idp.mint(key=new, sub=f"n{i}")) for i in range(8)))
        assert len(got) == 8

    run(idp, body)
    assert idp.jwks_hits == 2


def test_key_set_is_cached_then_refetched_after_its_cache_time(idp: FakeIdP) -> None:
    idp.add_key("RS256")
    clock = Clock()

    async def body(v: OIDCVerifier) -> None:
        for _ in range(5):
            await v.verify(idp.mint())
        assert idp.jwks_hits == 1
        clock.now += 299
        await v.verify(idp.mint())
        assert idp.jwks_hits == 1
        clock.now += 2
        await v.verify(idp.mint())
        assert idp.jwks_hits == 2

    run(idp, body, clock, jwks_cache_seconds=300)


# -- the IdP misbehaving: fail closed with 503 ----------------------------------------------


def test_idp_down_fails_closed_with_503_and_recovers(idp: FakeIdP) -> None:
    idp.add_key("ES256")
    idp.down = True
    clock = Clock()

    async def body(v: OIDCVerifier) -> None:
        token = idp.mint()
        with pytest.raises(ServiceUnavailable) as info:
            await v.verify(token)
        assert info.value.status_code == 503 and info.value.code == "identity_provider_unavailable"
        assert token not in info.value.message
        idp.down = False
        # Within the failure back-off the IdP is not asked again.
        with pytest.raises(ServiceUnavailable):
            await v.verify(token)
        assert idp.discovery_hits == 0
        clock.now += 5
        assert (await v.verify(token)).subject == "user-1"

    run(idp, body, clock)


def test_expired_key_set_is_not_used_while_the_idp_is_down(idp: FakeIdP) -> None:
    idp.add_key("ES256")
    clock = Clock()

    async def body(v: OIDCVerifier) -> None:
        token = idp.mint()
        await v.verify(token)
        idp.down = True
        clock.now += 301
        with pytest.raises(ServiceUnavailable):
            await v.verify(token)

    run(idp, body, clock, jwks_cache_seconds=300)


def test_an_issuer_that_moves_its_keys_is_discovered_again(idp: FakeIdP) -> None:
    idp.add_key("ES256")
    clock = Clock()

    async def body(v: OIDCVerifier) -> None:
        await v.verify(idp.mint())
        idp.jwks_path = "/keys/v2"
        new = idp.rotate("ES256")
        with pytest.raises(ServiceUnavailable):
            await v.verify(idp.mint(key=new))
        clock.now += 31
        assert (await v.verify(idp.mint(key=new, sub="moved"))).subject == "moved"
        assert idp.discovery_hits == 2

    run(idp, body, clock)


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param(lambda idp: setattr(idp, "discovery_issuer", "https://elsewhere.example"), id="issuer-mismatch"),
        pytest.param(lambda idp: setattr(idp, "jwks_override", b"x" * (MAX_JWKS_BYTES + 1)), id="jwks-too-large"),
        pytest.param(lambda idp: setattr(idp, "jwks_override", b"{not json"), id="jwks-not-json"),
        pytest.param(lambda idp: setattr(idp, "jwks_override", {"no": "keys"}), id="jwks-no-keys"),
        pytest.param(lambda idp: setattr(idp, "delay_seconds", 1.0), id="idp-too-slow"),
    ],
)
def test_bad_discovery_or_key_set_is_refused_with_503(idp: FakeIdP, setup: Callable[[FakeIdP], None]) -> None:
    idp.add_key("ES256")
    setup(idp)
    refused(idp, idp.mint(), "identity_provider_unavailable", http_timeout_seconds=0.3)


# -- through the authenticator and the identify stage --------------------------------------


def test_authenticator_routes_non_key_bearers_to_oidc(idp: FakeIdP) -> None:
    idp.add_key("ES256")
    token = idp.mint(sub="dana")

    async def go() -> tuple[RequestContext, BastionError]:
        async with httpx.AsyncClient(trust_env=False) as http:
            stage = IdentifyStage(Authenticator(None, OIDCVerifier([_issuer(idp)], http)))
            ctx = RequestContext(endpoint="chat")
            ctx.state["authorization"] = f"Bearer {token}"
            await stage(ctx)
            bad = RequestContext(endpoint="chat")
            bad.state["authorization"] = "Bearer " + idp.mint(aud="nope")
            with pytest.raises(AuthenticationFailed) as info:
                await stage(bad)
            return ctx, info.value

    ctx, err = asyncio.run(go())
    assert ctx.principal is not None and ctx.principal.subject == "dana"
    assert ctx.decisions[-1].reason == f"oidc token from {idp.issuer}"
    assert err.code == "invalid_token"
    assert err.headers["WWW-Authenticate"] == 'Bearer realm="bastion", error="invalid_token"'


def test_identify_stage_records_a_deny_when_the_idp_is_down(idp: FakeIdP) -> None:
    idp.add_key("ES256")
    idp.down = True

    async def go() -> RequestContext:
        async with httpx.AsyncClient(trust_env=False) as http:
            stage = IdentifyStage(Authenticator(None, OIDCVerifier([_issuer(idp)], http)))
            ctx = RequestContext(endpoint="chat")
            ctx.state["authorization"] = "Bearer " + idp.mint()
            with pytest.raises(ServiceUnavailable):
                await stage(ctx)
            return ctx

    ctx = asyncio.run(go())
    assert ctx.principal is None
    assert [(d.stage, d.effect, d.reason) for d in ctx.decisions] == [
        ("identify", "deny", "authentication failed (identity_provider_unavailable)")
    ]


@pytest.mark.parametrize(
    "field, url, ok",
    [
        ("issuer", "https://login.example.com/tenant/v2.0", True),
        ("issuer", "http://127.0.0.1:8443", True),
        ("issuer", "http://localhost/realms/x", True),
        ("issuer", "http://[::1]:9000", True),
        ("issuer", "http://login.example.com", False),
        ("issuer", "http://127.0.0.1.evil.example", False),
        ("jwks_uri", "http://keys.example.com/jwks", False),
        ("discovery_url", "ftp://example.com/x", False),
    ],
)
def test_issuer_urls_must_be_https_unless_loopback(field: str, url: str, ok: bool) -> None:
    from pydantic import ValidationError

    values: dict[str, Any] = {"issuer": "https://idp.example.com", "audience": ["bastion"], field: url}
    if ok:
        assert getattr(OIDCIssuer(**values), field) == url
    else:
        with pytest.raises(ValidationError):
            OIDCIssuer(**values)


# -- the cache of verified tokens -----------------------------------------------------------


def test_a_cached_token_still_expires(idp: FakeIdP) -> None:
    idp.add_key("ES256")
    token = idp.mint(exp=int(time.time()) + 1)

    async def body(v: OIDCVerifier) -> None:
        assert (await v.verify(token)).subject == "user-1"
        assert (await v.verify(token)).subject == "user-1"
        exp = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["exp"]
        await asyncio.sleep(max(0.0, exp - time.time()) + 0.05)
        with pytest.raises(AuthenticationFailed) as info:
            await v.verify(token)
        assert info.value.code == "expired_token"

    run(idp, body, clock_skew_seconds=0)


def test_a_cached_token_dies_with_its_key_set(idp: FakeIdP) -> None:
    old = idp.add_key("RS256")
    clock = Clock()

    async def body(v: OIDCVerifier) -> None:
        token = idp.mint(key=old)
        await v.verify(token)
        await v.verify(token)
        assert idp.jwks_hits == 1
        # The issuer withdraws the key; once the key set is fetched again, the cached token is refused.
        new = idp.rotate("RS256")
        await v.verify(idp.mint(key=new))
        assert idp.jwks_hits == 2
        with pytest.raises(AuthenticationFailed):
            await v.verify(token)
        # A key set past its cache time with the IdP down: no cached answer either.
        fresh = idp.mint(key=new, sub="zed")
        await v.verify(fresh)
        idp.down = True
        clock.now += 301
        with pytest.raises(ServiceUnavailable):
            await v.verify(fresh)

    run(idp, body, clock, jwks_cache_seconds=300)
