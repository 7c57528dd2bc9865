"""Gateway overhead: direct to the upstream vs through Bastion (vs the LiteLLM proxy), in one run.

    python bench/overhead.py [--quick] [--no-peer] [--output bench/results/overhead.json]

Starts the fake OpenAI-compatible upstream and Bastion (identity and durable
audit on, SQLite), and, unless --no-peer, the LiteLLM proxy installed into its
own virtual environment (bench/.venv-litellm). Bastion and the peer are pinned to
the same single core; the upstream and the load generator use the other.
Measures, for a ~1 KB chat request, non-streaming and streaming: latency p50/p99
at concurrency 1 (and the added latency against direct), and requests/second at
concurrency 16 and 64. Records Bastion's RSS before and after the load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import UNIQUE, Target, latency, throughput  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PEER_VENV = ROOT / "bench" / ".venv-litellm"
GATEWAY_CORE = "1"
CLIENT_CORE = "0"
UPSTREAM_KEY = "sk-bench-upstream-key"
#: ~1 KB; UNIQUE makes every request's text different (no cache can flatter the figures).
PROMPT = (f"Ticket {UNIQUE}. " + "Summarise the following meeting notes for the weekly report. " * 16)[:1000]
#: A ~4 KB prompt dense with personal data (108 candidate values): the worst case for protection.
PROMPT_4KB = (f"Ticket {UNIQUE}. " + (
    "Customer follow-up from the support desk. Maria Gonzalez (maria.gonzalez@example.com, +1 415 555 0134) "
    "called about invoice INV-2291; her card ending 4242 was charged twice. Please draft a polite reply, "
    "confirm the refund of 49.90 EUR to IBAN DE89 3704 0044 0532 0130 00 and keep the tone friendly. "
) * 14)[:4096]
#: A ~4 KB business prompt with a few personal values, as most prompts that carry any have.
PROMPT_4KB_TYPICAL = (f"Ticket {UNIQUE}. Please turn these notes into a short status update for the steering "
                      "committee. " + " ".join([
    "The migration of the billing service to the new cluster finished on Tuesday, two days later than planned,",
    "because the load tests showed that the connection pool was too small for the month-end batch jobs.",
    "Operations raised the pool size and the second run passed with a comfortable margin.",
    "Finance asked whether the invoices generated during the cut-over were complete; a reconciliation",
    "against the previous system found no gaps, and the report has been shared with the controllers.",
    "The vendor contract for the document archive expires at the end of the quarter. Procurement proposes",
    "a two-year renewal with a lower storage price and a stricter retention clause, which legal reviewed.",
    "Questions about the renewal go to Daniel Okafor (daniel.okafor@example.com, +44 20 7946 0958).",
    "On the hiring side, two of the three open platform roles are filled; the third candidate declined,",
    "and the search restarts next week with a revised description that stresses on-call expectations.",
    "Security finished the review of the new single sign-on flow. They asked for shorter session",
    "lifetimes on administrative consoles and for alerts when a service account signs in interactively.",
    "Both changes are scheduled for the next release train. The mobile team shipped the accessibility",
    "fixes reported by the customer advisory board; feedback so far is positive, with one remaining issue",
    "about screen-reader labels on the settings page, tracked for the following sprint.",
    "Budget: spending is at 46 percent of the annual plan at the half-year mark, mostly because two",
    "conferences were cancelled and travel stayed low. The committee may want to move part of the",
    "surplus to the observability project, which is short of funding for its storage tier.",
    "Risks: the data-centre lease negotiation is still open, and the landlord asked for a decision",
    "before the end of next month. A fallback plan with a colocation provider is being priced.",
    "Next steps: confirm the archive renewal, approve the observability budget change, and agree on",
    "the date of the disaster-recovery exercise, proposed for the second week of the next quarter.",
] * 2))[:4096]


def _pin(core: str) -> list[str]:
    return ["taskset", "-c", core] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def _wait_line(proc: subprocess.Popen[str], pattern: str, timeout: float) -> str:
    deadline = time.time() + timeout
    assert proc.stdout is not None
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise RuntimeError(f"process exited early ({proc.returncode})")
            continue
        m = re.search(pattern, line)
        if m:
            return m.group(1)
    raise RuntimeError(f"no line matching {pattern!r} in {timeout}s")


def _wait_http(url: str, timeout: float, headers: dict[str, str] | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=2, headers=headers).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout}s")


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_upstream() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [*_pin(CLIENT_CORE), sys.executable, "-m", "tests.support.fake_upstream", "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )
    return proc, _wait_line(proc, r"listening on (\S+)", 30)


def start_bastion(tmp: Path, upstream: str) -> tuple[subprocess.Popen[str], str, str]:
    cfg = {
        "data_dir": str(tmp / "data"),
        "server": {"log_level": "warning"},
        "providers": [{"name": "fake", "type": "openai", "base_url": upstream, "api_key_env": "BENCH_UPSTREAM_KEY"}],
        "models": [{"name": "gpt-test", "provider": "fake", "upstream_model": "normal"}],
    }
    path = tmp / "bastion.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "BENCH_UPSTREAM_KEY": UPSTREAM_KEY, "PYTHONUNBUFFERED": "1"}
    out = subprocess.run([sys.executable, "-m", "bastion", "keys", "create", "--config", str(path), "--owner", "bench"],
                         capture_output=True, text=True, env=env, check=True)
    key = out.stdout.strip().splitlines()[-1]
    proc = subprocess.Popen(
        [*_pin(GATEWAY_CORE), sys.executable, "-m", "bastion", "serve", "--config", str(path), "--port", "0"],
        stdout=subprocess.PIPE, text=True, env=env, start_new_session=True,
    )
    url = _wait_line(proc, r"listening on (\S+)", 60)
    _wait_http(url + "/readyz", 30)
    return proc, url, key


def install_peer() -> Path | None:
    exe = PEER_VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    print("installing the LiteLLM proxy into bench/.venv-litellm (once) ...", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(PEER_VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"], check=True, timeout=1800)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"LiteLLM proxy could not be installed: {exc}", file=sys.stderr)
        return None
    return exe if exe.exists() else None


def start_peer(exe: Path, tmp: Path, upstream: str) -> tuple[subprocess.Popen[str], str, str]:
    master = "sk-bench-master-key"
    cfg = {
        "model_list": [{"model_name": "gpt-test", "litellm_params": {
            "model": "openai/normal", "api_base": upstream, "api_key": UPSTREAM_KEY}}],
        "general_settings": {"master_key": master},
        "litellm_settings": {"telemetry": False, "drop_params": True},
    }
    path = tmp / "litellm.yaml"
    path.write_text(yaml.safe_dump(cfg))
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False", "NO_DOCS": "True",
           "DISABLE_ADMIN_UI": "True"}
    proc = subprocess.Popen(
        [*_pin(GATEWAY_CORE), str(exe), "--config", str(path), "--host", "127.0.0.1", "--port", str(port),
         "--num_workers", "1"],
        stdout=subprocess.DEVNULL, stderr=open(tmp / "litellm.log", "w"), env=env, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    _wait_http(url + "/health/liveliness", 180)
    return proc, url, master


def stop(proc: subprocess.Popen[str] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


async def measure(target: Target, model: str, n: int, seconds: float) -> dict[str, object]:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}]}
    out: dict[str, object] = {}
    for mode, b in (("non_streaming", body), ("streaming", {**body, "stream": True})):
        res: dict[str, object] = {"c1": await latency(target, b, n)}
        for c in (16, 64):
            res[f"c{c}"] = await throughput(target, b, c, seconds)
        out[mode] = res
        print(f"  {target.name:8} {mode:14} p50 {res['c1']['p50_ms']:.2f} ms  p99 {res['c1']['p99_ms']:.2f} ms  "
              f"rps@16 {res['c16']['rps']:.0f}  rps@64 {res['c64']['rps']:.0f}", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer requests, shorter runs")
    ap.add_argument("--no-peer", action="store_true", help="skip the LiteLLM proxy")
    ap.add_argument("--output", default=str(ROOT / "bench" / "results" / "overhead.json"))
    args = ap.parse_args()
    n, seconds = (200, 3.0) if args.quick else (1000, 8.0)
    procs: list[subprocess.Popen[str]] = []
    results: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "request": {"prompt_chars": len(PROMPT), "requests_c1": n, "seconds_per_throughput_run": seconds},
        "pinning": {"gateway_core": GATEWAY_CORE, "client_and_upstream_core": CLIENT_CORE},
    }
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        try:
            up, upstream = start_upstream()
            procs.append(up)
            bastion, burl, key = start_bastion(tmp, upstream)
            procs.append(bastion)
            targets = [
                Target("direct", upstream + "/chat/completions", {"Authorization": f"Bearer {UPSTREAM_KEY}"}),
                Target("bastion", burl + "/v1/chat/completions", {"Authorization": f"Bearer {key}"}),
            ]
            peer = None if args.no_peer else install_peer()
            if peer is not None:
                pproc, purl, master = start_peer(peer, tmp, upstream)
                procs.append(pproc)
                targets.append(Target("litellm", purl + "/v1/chat/completions", {"Authorization": f"Bearer {master}"}))
            rss_before = _rss_kb(bastion.pid)
            measured = {}
            for t in targets:
                measured[t.name] = asyncio.run(measure(t, "normal" if t.name == "direct" else "gpt-test", n, seconds))
            results["targets"] = measured
            for key, prompt in (("prompt_4kb", PROMPT_4KB), ("prompt_4kb_typical", PROMPT_4KB_TYPICAL)):
                pii = {"messages": [{"role": "user", "content": prompt}]}
                results[key] = {
                    t.name: asyncio.run(latency(t, {**pii, "model": "normal" if t.name == "direct" else "gpt-test"},
                                                n))
                    for t in targets[:2]
                }
            results["bastion_rss_kb"] = {"before": rss_before, "after": _rss_kb(bastion.pid)}
            results["summary"] = summarise(measured)
            p4 = results["prompt_4kb"]
            results["summary"]["prompt_4kb_added_p50_ms"] = round(p4["bastion"]["p50_ms"] - p4["direct"]["p50_ms"], 3)
            results["summary"]["prompt_4kb_added_p99_ms"] = round(p4["bastion"]["p99_ms"] - p4["direct"]["p99_ms"], 3)
            p4t = results["prompt_4kb_typical"]
            results["summary"]["prompt_4kb_typical_added_p50_ms"] = round(
                p4t["bastion"]["p50_ms"] - p4t["direct"]["p50_ms"], 3)
            results["summary"]["prompt_4kb_typical_added_p99_ms"] = round(
                p4t["bastion"]["p99_ms"] - p4t["direct"]["p99_ms"], 3)
        finally:
            for p in reversed(procs):
                stop(p)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2))
    print(json.dumps(results["summary"], indent=2))


def summarise(m: dict[str, dict[str, dict[str, dict[str, float]]]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for mode in ("non_streaming", "streaming"):
        d, b = m["direct"][mode], m["bastion"][mode]
        s: dict[str, object] = {
            "added_p50_ms": round(b["c1"]["p50_ms"] - d["c1"]["p50_ms"], 3),
            "added_p99_ms": round(b["c1"]["p99_ms"] - d["c1"]["p99_ms"], 3),
            "rps_c16": {"direct": round(d["c16"]["rps"]), "bastion": round(b["c16"]["rps"])},
            "rps_c64": {"direct": round(d["c64"]["rps"]), "bastion": round(b["c64"]["rps"])},
        }
        if "litellm" in m:
            p = m["litellm"][mode]
            s["litellm_added_p50_ms"] = round(p["c1"]["p50_ms"] - d["c1"]["p50_ms"], 3)
            s["rps_c16"]["litellm"] = round(p["c16"]["rps"])  # type: ignore[index]
            s["rps_c64"]["litellm"] = round(p["c64"]["rps"])  # type: ignore[index]
            s["throughput_ratio_vs_litellm_c64"] = round(b["c64"]["rps"] / max(p["c64"]["rps"], 1e-9), 2)
        out[mode] = s
    return out


if __name__ == "__main__":
    main()
