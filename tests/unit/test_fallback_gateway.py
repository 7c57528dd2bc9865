"""End to end: an overloaded Claude model falls back, through a real gateway, only to what policy allows."""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.fake_anthropic import API_KEY, FakeAnthropic
from tests.support.gateway import Gateway
from tests.support.leaks import LEAKS

import bastion.app


def _wired() -> bool:
    return "FallbackStage(" in inspect.getsource(bastion.app)


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _wired(), reason="the fallback stage is not in the gateway's chat chain yet"),
]

FORBID_ECHO = """
@id("no-echo") @reason("echo is off limits in this test.")
forbid(principal, action == Bastion::Action::"invoke_model", resource == Bastion::Model::"echo");
"""


@pytest.fixture(scope="module")
def claude() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def gateway_with_fallbacks(
    make_gateway: Any, claude: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, upstream: Any
) -> Iterator[tuple[Gateway, Path]]:
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", API_KEY)
    LEAKS.secret(API_KEY)
    policy = tmp_path / "policies" / "test.cedar"
    policy.parent.mkdir()
    policy.write_text(FORBID_ECHO)
    events = tmp_path / "events.jsonl"
    gw = make_gateway(
        "fallback",
        providers=[{"name": "anthropic", "type": "anthropic", "base_url": claude.base_url,
                    "api_key_env": "TEST_ANTHROPIC_KEY"},
                   {"name": "fake", "type": "openai", "base_url": upstream.base_url,
                    "api_key_env": "FAKE_UPSTREAM_KEY"},
                   {"name": "builtin", "type": "echo"}],
        models=[{"name": "claude-down", "provider": "anthropic", "upstream_model": "error529",
                 "fallbacks": ["echo", "gpt-test"]},
                {"name": "echo", "provider": "builtin"},
                {"name": "gpt-test", "provider": "fake", "upstream_model": "normal"}],
        policy={"paths": [str(policy.parent)]},
        audit={"jsonl_path": str(events)},
    )
    gw.create_key("alice")
    yield gw.start(), events


def _event(events: Path) -> dict[str, Any]:
    deadline = time.time() + 5
    while time.time() < deadline:
        lines = [json.loads(x) for x in events.read_text().splitlines()] if events.exists() else []
        found = [e for e in lines if e.get("kind") == "request" and e.get("status") == 200]
        if found:
            event: dict[str, Any] = found[-1]
            return event
        time.sleep(0.05)
    raise AssertionError("no audit event for the request")


@pytest.mark.parametrize("stream", [False, True])
def test_overloaded_model_falls_back_past_a_forbidden_one(
    gateway_with_fallbacks: tuple[Gateway, Path], stream: bool
) -> None:
    gw, events = gateway_with_fallbacks
    client = gw.openai(gw.keys[0])
    messages: Any = [{"role": "user", "content": "hello fallback"}]
    if stream:
        chunks = list(client.chat.completions.create(model="claude-down", messages=messages, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        text = client.chat.completions.create(model="claude-down", messages=messages).choices[0].message.content
    assert text == "You said: hello fallback"
    decisions = [(d["effect"], d.get("data", {}).get("model")) for d in _event(events)["decisions"]
                 if d["stage"] == "fallback"]
    assert decisions == [("upstream_failed", "claude-down"), ("skip", "echo"), ("fallback", "gpt-test")]
