"""A fake OIDC identity provider: a real HTTP server on 127.0.0.1 with discovery, a JWKS and token minting.

    with FakeIdP() as idp:
        key = idp.add_key("ES256")
        token = idp.mint(sub="alice", groups=["eng"])
        cfg = idp.issuer_config(audience=["bastion"])     # a dict for bastion.yaml
        ...
        idp.rotate("RS256")        # a new key; the old ones are no longer published
        idp.down = True            # every endpoint answers 503

Keys are made with ``cryptography``; tokens are signed with PyJWT. Counters
(``jwks_hits``, ``discovery_hits``) let tests check caching and refetch limits.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

#: The audience tokens carry unless told otherwise.
DEFAULT_AUDIENCE = "bastion"


@dataclass
class SigningKey:
    """A private key the fake IdP signs with, and its public JWK."""

    kid: str
    alg: str
    private: Any
    public_jwk: dict[str, Any]

    @property
    def public(self) -> Any:
        """The public key object."""
        return self.private.public_key()


def make_key(alg: str = "RS256", kid: str | None = None) -> SigningKey:
    """A fresh key pair for ``alg`` (RS*/PS* -> RSA 2048, ES256 -> P-256, ES384 -> P-384, EdDSA -> Ed25519)."""
    kid = kid or "k-" + secrets.token_hex(4)
    private: Any
    if alg.startswith(("RS", "PS")):
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    elif alg in ("ES256", "ES384"):
        private = ec.generate_private_key(ec.SECP256R1() if alg == "ES256" else ec.SECP384R1())
        jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    elif alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
        jwk = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    else:
        raise ValueError(f"the fake IdP cannot make {alg} keys")
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return SigningKey(kid=kid, alg=alg, private=private, public_jwk=jwk)


@dataclass
class FakeIdP:
    """An OIDC provider on 127.0.0.1 (OS-assigned port); start() or use as a context manager."""

    #: Serve this as the discovery document's ``issuer`` instead of the real one (mismatch tests).
    discovery_issuer: str | None = None
    #: When True every endpoint answers 503.
    down: bool = False
    #: Seconds every answer is held back (timeout tests).
    delay_seconds: float = 0.0
    #: Served instead of the real key set when set (bytes are sent as they are).
    jwks_override: Any = None
    #: Where the key set is served (change it to test an issuer moving its keys).
    jwks_path: str = "/jwks"
    keys: list[SigningKey] = field(default_factory=list)
    jwks_hits: int = 0
    discovery_hits: int = 0
    _server: ThreadingHTTPServer | None = None
    _base: str = ""
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeIdP:
        """Listen on 127.0.0.1 on a free port and serve in a thread."""
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                idp._answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # Kept after stop() so a request still in flight can finish answering.
        self._base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeIdP:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        """The issuer URL (also the base of every endpoint)."""
        assert self._base, "start the fake IdP first"
        return self._base

    @property
    def jwks_uri(self) -> str:
        """Where the key set is served."""
        return self.issuer + self.jwks_path

    def issuer_config(self, audience: list[str] | None = None, **overrides: Any) -> dict[str, Any]:
        """An ``identity.oidc`` entry for bastion.yaml (or ``OIDCIssuer(**...)``) trusting this IdP."""
        cfg: dict[str, Any] = {"issuer": self.issuer, "audience": audience or [DEFAULT_AUDIENCE]}
        cfg.update(overrides)
        return cfg

    # -- keys ------------------------------------------------------------------------------

    def add_key(self, alg: str = "RS256", kid: str | None = None) -> SigningKey:
        """Make a key, publish it, and return it (the newest key signs by default)."""
        key = make_key(alg, kid)
        with self._lock:
            self.keys.append(key)
        return key

    def remove_key(self, kid: str) -> None:
        """Stop publishing the key ``kid``."""
        with self._lock:
            self.keys = [k for k in self.keys if k.kid != kid]

    def rotate(self, alg: str = "RS256", kid: str | None = None) -> SigningKey:
        """Publish a new key and withdraw every older one."""
        key = make_key(alg, kid)
        with self._lock:
            self.keys = [key]
        return key

    def key(self, kid: str | None = None) -> SigningKey:
        """The key ``kid``, or the newest one."""
        with self._lock:
            if not self.keys:
                raise LookupError("the fake IdP has no keys; call add_key() first")
            if kid is None:
                return self.keys[-1]
            for k in self.keys:
                if k.kid == kid:
                    return k
        raise LookupError(f"no key {kid!r}")

    # -- tokens ----------------------------------------------------------------------------

    def claims(self, lifetime: float = 300.0, **claims: Any) -> dict[str, Any]:
        """A standard claim set (iss, aud, sub, iat, nbf, exp) updated by ``claims``; None drops one."""
        now = int(time.time())
        out: dict[str, Any] = {
            "iss": self.issuer,
            "aud": DEFAULT_AUDIENCE,
            "sub": "user-1",
            "iat": now,
            "nbf": now,
            "exp": now + int(lifetime),
        }
        out.update(claims)
        return {k: v for k, v in out.items() if v is not None}

    def mint(
        self,
        *,
        key: SigningKey | None = None,
        alg: str | None = None,
        headers: dict[str, Any] | None = None,
        lifetime: float = 300.0,
        **claims: Any,
    ) -> str:
        """A token signed by ``key`` (default: the newest key); ``claims`` override the defaults."""
        key = key or self.key()
        hdr: dict[str, Any] = {"kid": key.kid}
        hdr.update(headers or {})
        hdr = {k: v for k, v in hdr.items() if v is not None}
        return jwt.encode(self.claims(lifetime, **claims), key.private, algorithm=alg or key.alg, headers=hdr)

    # -- serving ---------------------------------------------------------------------------

    def _answer(self, req: BaseHTTPRequestHandler) -> None:
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        path = req.path.split("?", 1)[0]
        if self.down:
            return self._send(req, 503, b'{"error": "down"}')
        if path == "/.well-known/openid-configuration":
            with self._lock:
                self.discovery_hits += 1
            doc = {
                "issuer": self.discovery_issuer or self.issuer,
                "jwks_uri": self.jwks_uri,
                "id_token_signing_alg_values_supported": ["RS256", "PS256", "ES256", "EdDSA"],
            }
            return self._send(req, 200, json.dumps(doc).encode())
        if path == self.jwks_path:
            with self._lock:
                self.jwks_hits += 1
                body = (
                    self.jwks_override
                    if self.jwks_override is not None
                    else {"keys": [k.public_jwk for k in self.keys]}
                )
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            return self._send(req, 200, raw)
        return self._send(req, 404, b'{"error": "not found"}')

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        try:
            req.send_response(status)
            req.send_header("Content-Type", "application/json")
            req.send_header("Content-Length", str(len(body)))
            req.end_headers()
            req.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (timeout tests); nothing to answer
