"""OIDC bearer tokens through a real gateway: real keys, the SDK as client, refusals and rotation."""

from __future__ import annotations

import json

import jwt
import openai
import pytest

from tests.support.gateway import run_cli
from tests.support.idp import FakeIdP
from tests.support.leaks import LEAKS

CHAT = "/v1/chat/completions"
BODY = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def idp():
    with FakeIdP() as fake:
        fake.add_key("RS256")
        yield fake


@pytest.fixture
def oidc_gateway(make_gateway, idp):
    gw = make_gateway(identity={"oidc": [idp.issuer_config(
        ["bastion"], jwks_min_refetch_seconds=1, claims={"groups": "groups", "tenant": "org"})]})
    return gw.start()


def _token(idp, **kw) -> str:
    token = idp.mint(**kw)
    LEAKS.secret(token)
    return token


def test_a_valid_token_reaches_the_model_and_is_audited_by_subject(oidc_gateway, idp):
    token = _token(idp, sub="maria.k", email="maria@example.com", groups=["eng", "ml"], org="acme")
    resp = oidc_gateway.openai(token).chat.completions.create(**BODY)
    assert resp.choices[0].message.content == "You said: hi"
    events = [json.loads(line) for line in run_cli("audit", "export", "--config",
                                                   str(oidc_gateway.config_path)).stdout.splitlines()]
    principal = events[-1]["principal"]
    assert principal["subject"] == "maria.k" and principal["auth_method"] == "oidc"
    assert principal["groups"] == ["eng", "ml"] and principal["tenant"] == "acme"
    assert token not in json.dumps(events)


@pytest.mark.parametrize("case", ["expired", "not_yet_valid", "wrong_issuer", "wrong_audience", "alg_none",
                                  "hs256_with_public_key", "unknown_kid", "tampered"])
def test_bad_tokens_are_refused_before_any_upstream_call(oidc_gateway, idp, upstream, case):
    import time

    key = idp.key()
    now = int(time.time())
    if case == "expired":
        token = idp.mint(exp=now - 600, iat=now - 900, nbf=now - 900)
    elif case == "not_yet_valid":
        token = idp.mint(nbf=now + 600)
    elif case == "wrong_issuer":
        token = idp.mint(iss="https://evil.example.com")
    elif case == "wrong_audience":
        token = idp.mint(aud="someone-else")
    elif case == "alg_none":
        token = jwt.encode(idp.claims(), None, algorithm="none", headers={"kid": key.kid})
    elif case == "hs256_with_public_key":
        from cryptography.hazmat.primitives import serialization

        pem = key.public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        # PyJWT refuses to sign HS256 with a PEM; forge the signature by hand, as an attacker would.
        import base64
        import hashlib
        import hmac

        def b64(b: bytes) -> str:
            return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

        head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
        body = b64(json.dumps(idp.claims()).encode())
        sig = b64(hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest())
        token = f"{head}.{body}.{sig}"
    elif case == "unknown_kid":
        from tests.support.idp import make_key

        stranger = make_key("RS256", kid="not-published")
        token = idp.mint(key=stranger)
    else:
        good = idp.mint()
        head, body, sig = good.split(".")
        import base64

        claims = json.loads(base64.urlsafe_b64decode(body + "=="))
        claims["sub"] = "admin"
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        token = f"{head}.{forged}.{sig}"
    LEAKS.secret(token)
    before = len(upstream.received)
    with pytest.raises(openai.AuthenticationError) as err:
        oidc_gateway.openai(token).chat.completions.create(**BODY)
    assert err.value.status_code == 401
    assert err.value.body["code"] in ("invalid_token", "expired_token")
    assert len(upstream.received) == before


def test_rotated_keys_are_picked_up(oidc_gateway, idp):
    client = oidc_gateway.openai(_token(idp))
    client.chat.completions.create(**BODY)
    idp.rotate("ES256")
    token = _token(idp, sub="after-rotation")
    assert oidc_gateway.openai(token).chat.completions.create(**BODY).choices
