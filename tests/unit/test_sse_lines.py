"""Splitting a provider's event stream: lines across reads, readiness, the size cap, CRLF."""

from __future__ import annotations

import asyncio
from unittest import mock

import aiohttp
import pytest

from bastion.errors import UpstreamFailed
from bastion.providers.transport import SSELines


def _reader() -> aiohttp.StreamReader:
    # The protocol only hears about flow control here, which these small feeds never reach.
    return aiohttp.StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())


def test_lines_split_across_reads_and_readiness() -> None:
    async def go() -> None:
        content = _reader()
        lines = SSELines(content)
        assert not lines.ready()  # nothing has arrived
        content.feed_data(b'data: {"a": 1}\r\n\r\nevent: x\n: comment\ndata: {"b"')
        assert lines.ready()
        assert await lines.next() == '{"a": 1}'
        assert not lines.ready()  # the second line is incomplete: waiting would be needed
        content.feed_data(b': 2}\n\ndata: [DONE]\n\n')
        assert lines.ready()
        assert await lines.next() == '{"b": 2}'
        assert await lines.next() == "[DONE]"
        content.feed_eof()
        assert lines.ready()  # the end is here too
        assert await lines.next() is None

    asyncio.run(go())


def test_a_last_line_without_newline_is_kept() -> None:
    async def go() -> None:
        content = _reader()
        lines = SSELines(content)
        content.feed_data(b"data: tail")
        content.feed_eof()
        assert await lines.next() == "tail"
        assert await lines.next() is None

    asyncio.run(go())


def test_next_waits_for_data_that_has_not_arrived() -> None:
    async def go() -> None:
        content = _reader()
        lines = SSELines(content)
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, content.feed_data, b"data: late\n")
        assert await asyncio.wait_for(lines.next(), 2) == "late"

    asyncio.run(go())


@pytest.mark.parametrize("data", [b"data: " + b"x" * 200 + b"\n", b"data: " + b"x" * 200])
def test_oversized_lines_are_refused(data: bytes) -> None:
    async def go() -> None:
        content = _reader()
        lines = SSELines(content, max_line_bytes=100)
        content.feed_data(data)
        content.feed_eof()
        with pytest.raises(UpstreamFailed) as err:
            await lines.next()
        assert err.value.code == "upstream_invalid_response"

    asyncio.run(go())
