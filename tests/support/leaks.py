"""The leak check: no credential may appear in any log line or response body of a test run.

Every secret a test makes (API keys, their hashes, bearer tokens, upstream
credentials) is registered here; every response body read through a recording
client and every log file of a Bastion process is searched for them at the end.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx


class LeakRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.secrets: set[str] = set()
        self.bodies: list[tuple[str, bytes]] = []
        self.log_files: set[Path] = set()
        self.log_texts: list[str] = []

    def secret(self, value: str) -> None:
        """Register a secret; for API keys, also the SHA-256 hash a database would hold."""
        with self._lock:
            self.secrets.add(value)
            self.secrets.add(hashlib.sha256(value.encode()).hexdigest())

    def body(self, where: str, data: bytes) -> None:
        with self._lock:
            self.bodies.append((where, data))

    def log_file(self, path: Path) -> None:
        with self._lock:
            self.log_files.add(path)

    def log_text(self, text: str) -> None:
        with self._lock:
            self.log_texts.append(text)

    def findings(self) -> list[str]:
        """Where each registered secret was seen, if anywhere."""
        found = []
        texts: list[tuple[str, str]] = [(w, b.decode("utf-8", "replace")) for w, b in self.bodies]
        texts += [(str(p), p.read_text("utf-8", "replace")) for p in self.log_files if p.exists()]
        texts += [("cli stderr", t) for t in self.log_texts]
        for secret in self.secrets:
            for where, text in texts:
                if secret in text:
                    found.append(f"{secret[:10]}... appears in {where}")
        return found


LEAKS = LeakRegistry()


class _TeeStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, where: str) -> None:
        self._inner, self._where, self._buf = inner, where, bytearray()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._buf.extend(chunk)
            yield chunk

    def close(self) -> None:
        LEAKS.body(self._where, bytes(self._buf))
        self._inner.close()


class RecordingTransport(httpx.HTTPTransport):
    """An HTTP transport that keeps a copy of every response body it reads."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        where = f"{request.method} {request.url.path} -> {response.status_code}"
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _TeeStream(response.stream, where)
        return response
