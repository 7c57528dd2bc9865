"""Two gateway replicas sharing PostgreSQL and Redis, with no shared memory between them."""

from __future__ import annotations

import concurrent.futures
import json
import time
import uuid

import httpx

from tests.support.gateway import run_cli
from tests.support.services import REDIS_URL, need, pg_schema

CHAT = "/v1/chat/completions"
BODY = {"model": "gpt-test", "messages": [{"role": "user", "content": "hello"}]}
LIMIT = 40


def _replicas(make_gateway, tmp_path, pg_url: str):
    need("127.0.0.1", 6379, "Redis")
    policy_dir = tmp_path / "shared-policies"
    policy_dir.mkdir()
    (policy_dir / "company.cedar").write_text("// company policies\n")
    prefix = "bastion-test:" + uuid.uuid4().hex[:10]
    common = dict(
        storage={"url": pg_url},
        limits={"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix,
                "rules": [{"name": "shared-app-per-day", "scope": "user", "match": "shared-app", "metric": "requests",
                           "window": "day", "limit": LIMIT}]},
        policy={"paths": [str(policy_dir)], "reload_seconds": 0.2},
        identity={"api_keys": {"refresh_seconds": 0.2}},
        # Each replica signs checkpoints with its own key; verification trusts both.
        audit={"trusted_public_keys": [str(tmp_path / f"replica-{n}" / "data" / "audit-signing.pub") for n in "ab"]},
    )
    a = make_gateway(name="replica-a", **common)
    b = make_gateway(name="replica-b", **common)
    return a, b, policy_dir


def test_two_replicas_share_limits_keys_policies_and_one_audit_chain(make_gateway, tmp_path):
    with pg_schema() as pg_url:
        a, b, policy_dir = _replicas(make_gateway, tmp_path, pg_url)
        key = a.create_key("shared-app")  # made through replica A's config; both read the same table
        a.start()
        b.start()

        # 1. A limit holds exactly across both replicas under concurrent load.
        def call(i: int) -> int:
            gw = a if i % 2 else b
            with httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
                return c.post(CHAT, json=BODY).status_code

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(call, range(3 * LIMIT)))
        assert codes.count(200) == LIMIT, codes
        assert codes.count(429) == 2 * LIMIT

        # 2. A policy change reaches both replicas.
        other = a.create_key("policy-probe")
        (policy_dir / "company.cedar").write_text(
            '@id("no-gpt-test")\n@reason("gpt-test is withdrawn.")\n'
            'forbid(principal, action == Bastion::Action::"invoke_model", resource == Bastion::Model::"gpt-test");\n'
        )
        deadline = time.time() + 10
        seen = set()
        while time.time() < deadline and len(seen) < 2:
            for gw in (a, b):
                with gw.client(other) as c:
                    r = c.post(CHAT, json=BODY)
                if r.status_code == 403 and r.json()["error"]["code"] == "policy_denied":
                    assert "withdrawn" in r.json()["error"]["message"]
                    seen.add(gw.url)
            time.sleep(0.1)
        assert len(seen) == 2, "the policy change did not reach both replicas"

        # 3. A key revoked through one replica's storage is refused by the other within a second.
        probe = a.create_key("revoke-me")
        with b.client(probe) as c:
            assert c.get("/v1/models").status_code == 200
        key_id = next(k["id"] for k in json.loads(run_cli("keys", "list", "--config", str(a.config_path),
                                                          "--json").stdout) if k["owner"] == "revoke-me")
        run_cli("keys", "revoke", "--config", str(a.config_path), key_id)
        revoked_at = time.time()
        while True:
            with b.client(probe) as c:
                status = c.get("/v1/models").status_code
            if status == 401:
                break
            assert time.time() - revoked_at < 1.5, "replica B still accepts a revoked key"
            time.sleep(0.05)
        assert time.time() - revoked_at < 1.5

        # 4. Both replicas wrote into one audit chain, and it verifies.
        a.stop()
        b.stop()
        verify = run_cli("audit", "verify", "--config", str(a.config_path), check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr
