"""The audit trail through a real gateway: one event per request, verifiable, and durable under SIGKILL."""

from __future__ import annotations

import json
import random
import signal
import threading
import time

import httpx

from tests.support.gateway import run_cli

CHAT = "/v1/chat/completions"


def _export(gw) -> list[dict]:
    out = run_cli("audit", "export", "--config", str(gw.config_path)).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _ids(events: list[dict]) -> set[str]:
    return {e.get("request_id") for e in events}


def test_every_request_is_audited_whatever_its_outcome(gateway):
    rids = []
    with gateway.client(gateway.keys[0]) as c:
        for body in (
            {"model": "gpt-test", "messages": [{"role": "user", "content": "fine"}]},
            {"model": "nope", "messages": [{"role": "user", "content": "x"}]},
            {"model": "error500-test", "messages": [{"role": "user", "content": "x"}]},
        ):
            rids.append(c.post(CHAT, json=body).headers["x-request-id"])
        rids.append(c.post(CHAT, content=b"{").headers["x-request-id"])
    with gateway.client() as c:
        rids.append(c.post(CHAT, json={"model": "gpt-test", "messages": []}).headers["x-request-id"])
    events = {e["request_id"]: e for e in _export(gateway)}
    statuses = [events[r]["status"] for r in rids]
    assert statuses == [200, 404, 502, 400, 401]
    ok = events[rids[0]]
    assert ok["principal"]["subject"] == "alice"
    assert ok["model"] == "gpt-test" and ok["provider"] == "fake"
    assert ok["usage"]["total_tokens"] > 0
    assert "upstream_ms" in json.dumps(ok) and "gateway_ms" in json.dumps(ok)
    assert gateway.keys[0] not in json.dumps(list(events.values()))
    assert run_cli("audit", "verify", "--config", str(gateway.config_path)).returncode == 0


def test_content_modes(make_gateway):
    secret_text = "the launch code is 0451"
    for mode in ("full", "hash", "none", "redacted"):
        gw = make_gateway(name=f"gw-{mode}", audit={"content": mode})
        key = gw.create_key("alice")
        gw.start()
        with gw.client(key) as c:
            c.post(CHAT, json={"model": "gpt-test", "messages": [{"role": "user", "content": secret_text}]})
        gw.stop()
        dump = json.dumps(_export(gw))
        if mode in ("full", "redacted"):
            assert secret_text in dump  # no protection configured yet: the text stands as sent
        else:
            assert secret_text not in dump


def test_tampering_is_detected_by_verify(make_gateway):
    gateway = make_gateway()
    gateway.create_key("alice")
    gateway.start()
    with gateway.client(gateway.keys[0]) as c:
        for i in range(5):
            c.post(CHAT, json={"model": "echo", "messages": [{"role": "user", "content": f"m{i}"}]})
    gateway.stop()
    import sqlite3

    db = gateway.config_path.parent / "data" / "bastion.db"
    conn = sqlite3.connect(db)
    seq, body = conn.execute("SELECT seq, body FROM audit_events ORDER BY seq LIMIT 1 OFFSET 2").fetchone()
    conn.execute("UPDATE audit_events SET body = ? WHERE seq = ?", (body.replace("echo", "gpt-4"), seq))
    conn.commit()
    conn.close()
    r = run_cli("audit", "verify", "--config", str(gateway.config_path), check=False)
    assert r.returncode != 0
    assert str(seq) in (r.stdout + r.stderr)


def _hammer(url: str, key: str, acked: list[str], stop: threading.Event, stream: bool) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as c:
        n = 0
        while not stop.is_set():
            n += 1
            body = {"model": "echo", "messages": [{"role": "user", "content": f"crash test {n}"}], "stream": stream}
            try:
                if stream:
                    with c.stream("POST", CHAT, json=body) as r:
                        if r.status_code == 200:
                            next(r.iter_bytes())  # the first byte counts as received
                            acked.append(r.headers["x-request-id"])
                else:
                    r = c.post(CHAT, json=body)
                    if r.status_code == 200:
                        acked.append(r.headers["x-request-id"])
            except (httpx.HTTPError, StopIteration):
                if stop.is_set():
                    return
                time.sleep(0.01)


def test_sigkill_never_loses_an_acknowledged_request(make_gateway):
    gw = make_gateway(audit={"checkpoint_every": 7})
    key = gw.create_key("crash")
    rng = random.Random(1234)
    acked: list[str] = []
    for _round in range(3):
        gw.start()
        stop = threading.Event()
        threads = [threading.Thread(target=_hammer, args=(gw.url, key, acked, stop, i % 2 == 1)) for i in range(6)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.8, 2.0))
        gw.stop(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(timeout=15)
    assert len(acked) > 20, "the load never got going"
    verify = run_cli("audit", "verify", "--config", str(gw.config_path), check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    missing = set(acked) - _ids(_export(gw))
    assert not missing, f"{len(missing)} acknowledged requests have no audit event"
