"""The pseudonym vault: per conversation, placeholder <-> original value.

A value sent to a provider as ``<PERSON_1>`` is kept here so the answer can be
restored for the user. The same value gets the same placeholder for the whole
conversation. Values are sealed with AES-GCM before they reach a store, and the
store finds them by a keyed hash, so neither memory dumps of a shared store nor
Redis itself ever hold a value in the clear. Entries expire after a TTL and
every conversation and the whole store have a size bound.

Conversation ids (``derive_conversation_id``) are scoped to the caller: an
explicit ``X-Bastion-Conversation`` header, or else a hash of the first
messages, always combined with the tenant and subject, so one caller cannot
restore another's values by guessing an id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from bastion.errors import BastionError, RequestTooLarge, ServiceUnavailable

#: ``RequestContext.state`` key of the placeholder -> value table the answer is restored with.
PSEUDONYMS_STATE = "protect.pseudonyms"
#: ``RequestContext.state`` key of the request's conversation id.
CONVERSATION_STATE = "protect.conversation_id"
#: The header a client may send to name its conversation.
CONVERSATION_HEADER = "x-bastion-conversation"
#: Longest explicit conversation id accepted, in characters.
MAX_CONVERSATION_HEADER_CHARS = 200
#: Messages hashed to recognise a conversation when no header names it.
CONVERSATION_MESSAGES = 2
#: Characters of each of those messages taken into the hash.
CONVERSATION_MESSAGE_CHARS = 4096

#: ``<PERSON_1>``: what a placeholder looks like.
PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]{0,63})_([1-9][0-9]{0,8})>")
_TYPE_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
#: Longest placeholder text possible, so a stream knows how much to hold back.
MAX_PLACEHOLDER_CHARS = 1 + 64 + 1 + 9 + 1

_NONCE_BYTES = 12


class VaultSettings(BaseModel):
    """Where pseudonyms are kept and for how long."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: ``memory`` (one replica) or ``redis`` (shared by all replicas).
    backend: Literal["memory", "redis"] = "memory"
    #: Seconds a conversation's pseudonyms live after their last use.
    ttl_seconds: float = Field(default=3600.0, gt=0, le=30 * 86400)
    #: Most conversations the in-memory store keeps (least recently used go first).
    max_conversations: int = Field(default=10_000, ge=1)
    #: Most distinct values one conversation may pseudonymize (beyond it, refused).
    max_entries_per_conversation: int = Field(default=1_000, ge=1)
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Seconds to wait on Redis before the request is refused.
    redis_timeout_seconds: float = Field(default=0.5, gt=0, le=30)
    redis_key_prefix: str = Field(default="bastion:vault:", pattern=r"^[A-Za-z0-9:_.-]{1,64}$")


def derive_conversation_id(
    *,
    tenant: str | None,
    subject: str,
    explicit: str | None = None,
    messages: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The caller-scoped id of a conversation: from the header if sent, else the first messages."""
    h = hashlib.sha256()
    h.update(b"bastion/conversation/v1\0")
    h.update((tenant or "").encode() + b"\0" + subject.encode() + b"\0")
    if explicit:
        if len(explicit) > MAX_CONVERSATION_HEADER_CHARS:
            raise RequestTooLarge("The conversation id header is too long.")
        h.update(b"header\0" + explicit.encode())
    else:
        h.update(b"messages\0")
        for message in list(messages)[:CONVERSATION_MESSAGES]:
            content = message.get("content")
            text = content if isinstance(content, str) else json.dumps(content, sort_keys=True)
            h.update(str(message.get("role", "")).encode() + b"\0")
            h.update(text[:CONVERSATION_MESSAGE_CHARS].encode() + b"\0")
    return "conv_" + h.hexdigest()[:32]


def restore_placeholders(text: str, values: Mapping[str, str]) -> str:
    """Put the original values back for every known placeholder; unknown ones stay."""
    if not values or "<" not in text:
        return text
    return PLACEHOLDER.sub(lambda m: values.get(m.group(0), m.group(0)), text)


class VaultStore(Protocol):
    """Where sealed pseudonyms live; it sees keyed hashes and ciphertext, never values."""

    async def assign(self, conversation_id: str, key: str, entity_type: str, sealed: bytes) -> str:
        """Atomically return the placeholder of ``key``, numbering a new one if needed."""
        ...

    async def load(self, conversation_id: str) -> dict[str, bytes]:
        """Every placeholder of the conversation with its sealed value."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@dataclass(slots=True)
class _Conversation:
    expires: float
    by_key: dict[str, str] = field(default_factory=dict)
    sealed: dict[str, bytes] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)


class MemoryVaultStore:
    """One replica's store: bounded, least-recently-used, with a sliding TTL."""

    def __init__(
        self,
        *,
        ttl_seconds: float = 3600.0,
        max_conversations: int = 10_000,
        max_entries: int = 1_000,
    ) -> None:
        self._ttl = ttl_seconds
        self._max_conversations = max_conversations
        self._max_entries = max_entries
        self._conversations: OrderedDict[str, _Conversation] = OrderedDict()

    def __len__(self) -> int:
        return len(self._conversations)

    def _find(self, conversation_id: str) -> _Conversation | None:
        """The live conversation, its TTL renewed; expired ones are dropped on the way."""
        now = time.monotonic()
        # Expired conversations sit at the front (least recently used); drop them as we pass.
        while self._conversations:
            first = next(iter(self._conversations.values()))
            if first.expires > now:
                break
            self._conversations.popitem(last=False)
        conv = self._conversations.get(conversation_id)
        if conv is not None:
            conv.expires = now + self._ttl
            self._conversations.move_to_end(conversation_id)
        return conv

    def _find_or_create(self, conversation_id: str) -> _Conversation:
        conv = self._find(conversation_id)
        if conv is None:
            conv = _Conversation(expires=time.monotonic() + self._ttl)
            self._conversations[conversation_id] = conv
            while len(self._conversations) > self._max_conversations:
                self._conversations.popitem(last=False)
        return conv

    async def assign(self, conversation_id: str, key: str, entity_type: str, sealed: bytes) -> str:
        """Atomically return the placeholder of ``key``, numbering a new one if needed."""
        conv = self._find_or_create(conversation_id)
        existing = conv.by_key.get(key)
        if existing is not None:
            return existing
        if len(conv.by_key) >= self._max_entries:
            raise RequestTooLarge("This conversation holds too many protected values.")
        n = conv.counters.get(entity_type, 0) + 1
        conv.counters[entity_type] = n
        placeholder = f"<{entity_type}_{n}>"
        conv.by_key[key] = placeholder
        conv.sealed[placeholder] = sealed
        return placeholder

    async def load(self, conversation_id: str) -> dict[str, bytes]:
        """Every placeholder of the conversation with its sealed value."""
        conv = self._find(conversation_id)
        return dict(conv.sealed) if conv is not None else {}

    async def close(self) -> None:
        """Nothing to release."""


# Runs in Redis so two replicas can never give one value two placeholders, or two
# values one placeholder. Returns false when the conversation is full.
_ASSIGN_LUA = """
local p = redis.call('HGET', KEYS[1], 'k:' .. ARGV[1])
if p then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return p
end
local total = redis.call('HINCRBY', KEYS[1], 'total', 1)
if total > tonumber(ARGV[5]) then
  redis.call('HINCRBY', KEYS[1], 'total', -1)
  return false
end
local n = redis.call('HINCRBY', KEYS[1], 'n:' .. ARGV[2], 1)
p = '<' .. ARGV[2] .. '_' .. n .. '>'
redis.call('HSET', KEYS[1], 'k:' .. ARGV[1], p, 'p:' .. p, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return p
"""


class RedisVaultStore:
    """A store shared by every replica: one Redis hash per conversation, expiring as a whole."""

    def __init__(
        self,
        url: str,
        *,
        ttl_seconds: float = 3600.0,
        max_entries: int = 1_000,
        timeout_seconds: float = 0.5,
        key_prefix: str = "bastion:vault:",
    ) -> None:
        import redis.asyncio as redis_asyncio

        self._redis = redis_asyncio.Redis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds
        )
        self._script = self._redis.register_script(_ASSIGN_LUA)
        self._ttl_ms = int(ttl_seconds * 1000)
        self._max_entries = max_entries
        self._prefix = key_prefix

    async def assign(self, conversation_id: str, key: str, entity_type: str, sealed: bytes) -> str:
        """Atomically return the placeholder of ``key``, numbering a new one if needed."""
        try:
            result = await self._script(
                keys=[self._prefix + conversation_id],
                args=[key, entity_type, sealed, self._ttl_ms, self._max_entries],
            )
        except Exception as exc:  # any Redis failure refuses the request: fail closed
            raise ServiceUnavailable("The pseudonym vault is not reachable.") from exc
        if result is None:
            raise RequestTooLarge("This conversation holds too many protected values.")
        return result.decode() if isinstance(result, bytes) else str(result)

    async def load(self, conversation_id: str) -> dict[str, bytes]:
        """Every placeholder of the conversation with its sealed value."""
        try:
            raw = await self._redis.hgetall(self._prefix + conversation_id)
        except Exception as exc:
            raise ServiceUnavailable("The pseudonym vault is not reachable.") from exc
        return {
            k[2:].decode(): v
            for k, v in raw.items()
            if isinstance(k, bytes) and isinstance(v, bytes) and k.startswith(b"p:")
        }

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


class Vault:
    """Pseudonymize values for a conversation and restore them in answers."""

    def __init__(self, store: VaultStore, secret: SecretStr | bytes) -> None:
        raw = secret.get_secret_value().encode() if isinstance(secret, SecretStr) else secret
        if len(raw) < 16:
            raise BastionError("The vault secret is too short.")
        self._store = store
        self._aead = AESGCM(hmac.new(raw, b"bastion/vault/seal/v1", hashlib.sha256).digest())
        self._index_key = hmac.new(raw, b"bastion/vault/index/v1", hashlib.sha256).digest()

    def __repr__(self) -> str:
        return f"Vault(store={type(self._store).__name__})"

    @classmethod
    def from_settings(cls, settings: VaultSettings, secret: SecretStr | bytes) -> Vault:
        """A vault on the configured store."""
        store: VaultStore
        if settings.backend == "redis":
            store = RedisVaultStore(
                settings.redis_url,
                ttl_seconds=settings.ttl_seconds,
                max_entries=settings.max_entries_per_conversation,
                timeout_seconds=settings.redis_timeout_seconds,
                key_prefix=settings.redis_key_prefix,
            )
        else:
            store = MemoryVaultStore(
                ttl_seconds=settings.ttl_seconds,
                max_conversations=settings.max_conversations,
                max_entries=settings.max_entries_per_conversation,
            )
        return cls(store, secret)

    def _index(self, conversation_id: str, value: str, entity_type: str) -> str:
        message = f"{conversation_id}\0{entity_type}\0{value}".encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()

    def _seal(self, conversation_id: str, value: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, value.encode(), conversation_id.encode())

    def _open(self, conversation_id: str, sealed: bytes) -> str:
        try:
            plain = self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], conversation_id.encode())
        except InvalidTag as exc:
            # Tampered, or sealed for another conversation: never guess a value.
            raise BastionError("A pseudonym could not be opened.") from exc
        return plain.decode()

    async def pseudonymize(self, conversation_id: str, value: str, entity_type: str) -> str:
        """The placeholder of ``value`` in this conversation (the same one every time)."""
        if not _TYPE_NAME.fullmatch(entity_type):
            raise BastionError("A pseudonym type must be an upper-case name.")
        key = self._index(conversation_id, value, entity_type)
        return await self._store.assign(conversation_id, key, entity_type, self._seal(conversation_id, value))

    async def pseudonymize_many(
        self, conversation_id: str, items: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        """Placeholders for several ``(value, type)`` pairs, in first-seen order."""
        out: dict[tuple[str, str], str] = {}
        for value, entity_type in items:
            if (value, entity_type) not in out:
                out[(value, entity_type)] = await self.pseudonymize(conversation_id, value, entity_type)
        return out

    async def values(self, conversation_id: str) -> dict[str, str]:
        """Placeholder -> original value for the whole conversation (for restoring streams)."""
        sealed = await self._store.load(conversation_id)
        return {p: self._open(conversation_id, s) for p, s in sealed.items()}

    async def restore(self, conversation_id: str, text: str) -> str:
        """``text`` with this conversation's placeholders replaced by their values."""
        if not PLACEHOLDER.search(text):
            return text
        return restore_placeholders(text, await self.values(conversation_id))

    async def close(self) -> None:
        """Release the store's connections."""
        await self._store.close()
