"""Identity: who is calling, from a scoped API key or an OIDC/JWT bearer token."""

from bastion.identity.apikeys import KeyRecord, KeyStore
from bastion.identity.authenticator import Authenticator, IdentifyStage
from bastion.identity.durations import parse_duration
from bastion.identity.oidc import OIDCVerifier

__all__ = [
    "Authenticator",
    "IdentifyStage",
    "KeyRecord",
    "KeyStore",
    "OIDCVerifier",
    "parse_duration",
]
