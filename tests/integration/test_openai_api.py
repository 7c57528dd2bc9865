"""The OpenAI-compatible API through a real gateway process, with the openai SDK as the client."""

from __future__ import annotations

import json
import time

import openai
import pytest

from tests.support.gateway import UPSTREAM_KEY


def test_chat_completion_reaches_upstream_with_provider_key_only(gateway, upstream):
    client = gateway.openai(gateway.keys[0])
    before = len(upstream.received)
    resp = client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hello there"}])
    assert resp.choices[0].message.content == "You said: hello there"
    assert resp.usage.total_tokens > 0
    seen = upstream.received[before:]
    assert len(seen) == 1
    assert seen[0].body["model"] == "normal"  # the provider's own model name
    assert seen[0].headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert gateway.keys[0] not in json.dumps(seen[0].headers)


def test_streaming_chat_with_the_sdk(gateway):
    client = gateway.openai(gateway.keys[0])
    stream = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "one two three four five six seven"}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: one two three four five six seven"
    # Text deltas that reach the gateway together may leave as one (tests/unit/test_relay.py).
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 1
    assert chunks[-1].choices[0].finish_reason == "stop"
    # The gateway asks upstream for usage, but the client did not: it gets no usage-only chunk.
    assert all(c.choices for c in chunks)


def test_a_slow_stream_is_relayed_as_it_comes(gateway):
    """Scanning in windows must not hold a slow model's words back until more arrive."""
    client = gateway.openai(gateway.keys[0])
    started = time.monotonic()
    stream = client.chat.completions.create(
        model="drip-test", stream=True,
        messages=[{"role": "user", "content": "alpha bravo charlie delta echo foxtrot golf hotel india"}],
    )
    arrivals = [(time.monotonic() - started, c.choices[0].delta.content)
                for c in stream if c.choices and c.choices[0].delta.content]
    text = "".join(t for _, t in arrivals)
    assert text == "You said: alpha bravo charlie delta echo foxtrot golf hotel india"
    # Four chunks, 0.25 s apart (then 0.25 s to the stop): each is out as it comes, not held
    # until the next one arrives or the answer ends.
    def at(word: str) -> float:
        return next(t for t, piece in arrivals if word in piece)

    assert 0.15 < at("delta") - at("alpha") < 0.4, arrivals
    assert 0.4 < at("golf") - at("alpha") < 0.65, arrivals
    assert 0.6 < at("india") - at("alpha") < 0.9, arrivals


def test_streaming_usage_when_asked(gateway):
    client = gateway.openai(gateway.keys[0])
    chunks = list(client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True},
    ))
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_tool_call_fields_pass_through_intact(gateway, upstream):
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }}]
    client = gateway.openai(gateway.keys[0])
    before = len(upstream.received)
    resp = client.chat.completions.create(
        model="tool-test", messages=[{"role": "user", "content": "weather in Paris"}],
        tools=tools, tool_choice="auto", temperature=0.2, seed=7,
    )
    sent = upstream.received[before].body
    assert sent["tools"] == tools and sent["tool_choice"] == "auto" and sent["seed"] == 7
    call = resp.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"query": "weather in Paris"}
    assert resp.choices[0].finish_reason == "tool_calls"

    stream = client.chat.completions.create(
        model="tool-test", messages=[{"role": "user", "content": "weather in Oslo"}], tools=tools, stream=True,
    )
    calls = [tc for c in stream if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls and calls[0].function.name == "get_weather"


def test_embeddings(gateway):
    client = gateway.openai(gateway.keys[0])
    resp = client.embeddings.create(model="embed-test", input=["a", "bbb"])
    assert [d.embedding[0] for d in resp.data] == [1.0, 3.0]


def test_echo_model_needs_no_provider(gateway):
    client = gateway.openai(gateway.keys[0])
    resp = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "ping"}])
    assert resp.choices[0].message.content.startswith("echo: received 1 message(s)")
    assert '"ping"' in resp.choices[0].message.content


def test_models_lists_only_what_the_key_allows(make_gateway):
    gw = make_gateway()
    narrow = gw.create_key("bob", "--models", "gpt-test,echo")
    wide = gw.create_key("carol")
    gw.start()
    ids = {m.id for m in gw.openai(narrow).models.list()}
    assert ids == {"gpt-test", "echo"}
    assert "tool-test" in {m.id for m in gw.openai(wide).models.list()}
    with pytest.raises(openai.NotFoundError) as err:
        gw.openai(narrow).chat.completions.create(model="tool-test", messages=[{"role": "user", "content": "x"}])
    assert err.value.body["code"] == "model_not_found"


def test_every_response_carries_request_id_and_overhead(gateway):
    with gateway.client(gateway.keys[0]) as c:
        r = c.post("/v1/chat/completions", json={"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 200
        assert r.headers["x-request-id"].startswith("req_")
        assert float(r.headers["x-bastion-overhead-ms"]) >= 0
        bad = c.post("/v1/chat/completions", content=b"{")
        assert bad.headers["x-request-id"].startswith("req_")
        assert bad.json()["error"]["request_id"] == bad.headers["x-request-id"]


def test_operations_endpoints(gateway):
    with gateway.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz").json()
        assert ready["status"] == "ready" and ready["checks"]["database"]["ok"]
    with gateway.client(gateway.keys[0]) as c:
        c.post("/v1/chat/completions", json={"model": "echo", "messages": [{"role": "user", "content": "x"}]})
        text = c.get("/metrics").text
    assert "bastion_requests_total" in text
    assert "bastion_gateway_overhead_seconds_bucket" in text
    assert "bastion_request_duration_seconds_bucket" in text


def test_azure_openai_provider(make_gateway, upstream):
    base = upstream.base_url.rsplit("/v1", 1)[0]
    gw = make_gateway(
        providers=[{"name": "azure", "type": "azure_openai", "base_url": base, "api_key_env": "FAKE_UPSTREAM_KEY",
                    "api_version": "2024-06-01"}],
        models=[{"name": "gpt-4o", "provider": "azure", "upstream_model": "normal"}],
    )
    key = gw.create_key("alice")
    gw.start()
    before = len(upstream.received)
    resp = gw.openai(key).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert resp.choices[0].message.content == "You said: hi"
    got = upstream.received[before]
    assert got.path == "/openai/deployments/normal/chat/completions"
    assert got.headers["api-key"] == UPSTREAM_KEY and "authorization" not in got.headers


def test_a_workflow_header_caps_one_agent_run(make_gateway):
    gw = make_gateway(name="gw-workflow", limits={"rules": [
        {"name": "run-cap", "scope": "workflow", "metric": "requests", "window": "hour", "limit": 2}]})
    key = gw.create_key("alice")
    gw.start()
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
    with gw.client(key) as c:
        run = {"X-Bastion-Workflow-Id": "agent-run-1"}
        assert [c.post("/v1/chat/completions", json=body, headers=run).status_code for _ in range(3)] == [200, 200, 429]
        refused = c.post("/v1/chat/completions", json=body, headers=run).json()
        assert "for this workflow" in refused["error"]["message"]
        other = {"X-Bastion-Workflow-Id": "agent-run-2"}
        assert c.post("/v1/chat/completions", json=body, headers=other).status_code == 200
        assert c.post("/v1/chat/completions", json=body).status_code == 200  # outside any workflow
        bad = c.post("/v1/chat/completions", json=body, headers={"X-Bastion-Workflow-Id": ""})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_workflow"
