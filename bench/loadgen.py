"""A small, fast HTTP/1.1 load generator over keep-alive connections, for the benchmarks.

Written on raw asyncio streams so that the client costs far less CPU than the
servers it measures; it understands Content-Length and chunked bodies.

A body that contains ``UNIQUE`` (eight characters) has it replaced by a fresh
eight-letter lowercase word in every request (letters, so no detector of numbers
fires on it), so no two requests carry the same text and
no cache in the server can make a run look faster than real traffic.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field
from itertools import count
from urllib.parse import urlsplit

#: Replaced by a different eight-letter word in every request (same length: Content-Length holds).
UNIQUE = "@UNIQUE@"
_UNIQUE_BYTES = UNIQUE.encode()
_serial = count(1)


def _fresh(raw: bytes) -> bytes:
    if _UNIQUE_BYTES not in raw:
        return raw
    n = next(_serial)
    word = bytearray(8)
    for i in range(8):
        n, r = divmod(n, 26)
        word[7 - i] = 97 + r
    return raw.replace(_UNIQUE_BYTES, bytes(word))


@dataclass
class Target:
    """Where to send requests and how."""

    name: str
    url: str  # e.g. http://127.0.0.1:8080/v1/chat/completions
    headers: dict[str, str] = field(default_factory=dict)

    def raw(self, body: dict[str, object]) -> bytes:
        u = urlsplit(self.url)
        payload = json.dumps(body).encode()
        head = [f"POST {u.path} HTTP/1.1", f"Host: {u.netloc}", "Content-Type: application/json",
                f"Content-Length: {len(payload)}", "Connection: keep-alive"]
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


class Conn:
    """One keep-alive connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> Conn:
        u = urlsplit(url)
        r, w = await asyncio.open_connection(u.hostname, u.port)
        return cls(r, w)

    async def send(self, raw: bytes) -> tuple[int, float, float, bytes]:
        """Send one request; return (status, seconds to first body byte, seconds in all, body)."""
        t0 = time.perf_counter()
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdrs = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        ttfb = 0.0
        if "content-length" in hdrs:
            body = await self.reader.readexactly(int(hdrs["content-length"]))
            ttfb = time.perf_counter() - t0
        else:
            parts = []
            while True:
                size_line = await self.reader.readuntil(b"\r\n")
                size = int(size_line.strip().split(b";")[0], 16)
                if not ttfb:
                    ttfb = time.perf_counter() - t0
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            body = b"".join(parts)
        if hdrs.get("connection", "").lower() == "close":
            raise ConnectionResetError("server closed the connection")
        return status, ttfb, time.perf_counter() - t0, body

    def close(self) -> None:
        self.writer.close()


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100 * (len(s) - 1))))
    return s[k]


async def latency(target: Target, body: dict[str, object], n: int, warmup: int = 20) -> dict[str, float]:
    """Sequential requests on one connection: latency percentiles in milliseconds."""
    raw = target.raw(body)
    conn = await Conn.open(target.url)
    try:
        for _ in range(warmup):
            await conn.send(_fresh(raw))
        totals, firsts, errors = [], [], 0
        for _ in range(n):
            status, ttfb, total, _body = await conn.send(_fresh(raw))
            if status != 200:
                errors += 1
            totals.append(total * 1000)
            firsts.append(ttfb * 1000)
    finally:
        conn.close()
    return {"n": n, "errors": errors, "p50_ms": statistics.median(totals), "p99_ms": pct(totals, 99),
            "mean_ms": statistics.fmean(totals), "ttfb_p50_ms": statistics.median(firsts),
            "ttfb_p99_ms": pct(firsts, 99)}


async def throughput(target: Target, body: dict[str, object], concurrency: int, seconds: float) -> dict[str, float]:
    """``concurrency`` connections sending back to back for ``seconds``: requests per second."""
    raw = target.raw(body)
    done = errors = 0
    lat: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, errors
        conn = await Conn.open(target.url)
        try:
            while time.perf_counter() < stop_at:
                try:
                    status, _ttfb, total, _ = await conn.send(_fresh(raw))
                except (ConnectionError, asyncio.IncompleteReadError):
                    errors += 1
                    conn.close()
                    conn = await Conn.open(target.url)
                    continue
                if status == 200:
                    done += 1
                    lat.append(total * 1000)
                else:
                    errors += 1
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"concurrency": concurrency, "seconds": elapsed, "ok": done, "errors": errors,
            "rps": done / elapsed, "p50_ms": statistics.median(lat) if lat else float("nan"),
            "p99_ms": pct(lat, 99)}
