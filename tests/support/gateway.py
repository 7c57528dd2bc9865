"""Run a real Bastion process for a test: write its config, start it on a free port, stop it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.leaks import LEAKS, RecordingTransport

BASTION = [sys.executable, "-m", "bastion"]
_LISTENING = re.compile(r"listening on (http://\S+)")


def base_config(upstream_url: str, data_dir: Path, **overrides: Any) -> dict[str, Any]:
    """A configuration with the fake upstream as provider ``fake``, and a few models on it."""
    cfg: dict[str, Any] = {
        "data_dir": str(data_dir),
        "audit": {"content": "redacted", "checkpoint_every": 10},
        "providers": [
            {"name": "fake", "type": "openai", "base_url": upstream_url, "api_key_env": "FAKE_UPSTREAM_KEY"},
            {"name": "builtin", "type": "echo"},
        ],
        "models": [
            {"name": "gpt-test", "provider": "fake", "upstream_model": "normal"},
            {"name": "tool-test", "provider": "fake", "upstream_model": "toolcall"},
            {"name": "slow-test", "provider": "fake", "upstream_model": "slow:3"},
            {"name": "drip-test", "provider": "fake", "upstream_model": "drip:0.25"},
            {"name": "garbage-test", "provider": "fake", "upstream_model": "garbage"},
            {"name": "error500-test", "provider": "fake", "upstream_model": "error500"},
            {"name": "error429-test", "provider": "fake", "upstream_model": "error429"},
            {"name": "error401-test", "provider": "fake", "upstream_model": "error401"},
            {"name": "badstream-test", "provider": "fake", "upstream_model": "badstream"},
            {"name": "leak-test", "provider": "fake", "upstream_model": "leak"},
            {"name": "embed-test", "provider": "fake", "upstream_model": "normal", "kind": "embedding"},
            {"name": "echo", "provider": "builtin"},
        ],
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


UPSTREAM_KEY = "sk-upstream-" + "Z" * 24


def env() -> dict[str, str]:
    """The environment for Bastion processes: the upstream credential, and this source tree."""
    e = dict(os.environ)
    e["FAKE_UPSTREAM_KEY"] = UPSTREAM_KEY
    e["PYTHONUNBUFFERED"] = "1"
    LEAKS.secret(UPSTREAM_KEY)
    return e


def run_cli(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``bastion ARGS`` and return its output."""
    proc = subprocess.run([*BASTION, *args], capture_output=True, text=True, env=env(), timeout=timeout)
    LEAKS.log_text(proc.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"bastion {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@dataclass
class Gateway:
    """A running Bastion process."""

    config_path: Path
    url: str = ""
    proc: subprocess.Popen[str] | None = None
    stdout_path: Path | None = None
    stderr_path: Path | None = None
    keys: list[str] = field(default_factory=list)

    def create_key(self, owner: str = "alice", *extra: str) -> str:
        """Make an API key with the CLI; the key is the last line of stdout."""
        out = run_cli("keys", "create", "--config", str(self.config_path), "--owner", owner, *extra)
        key = out.stdout.strip().splitlines()[-1].strip()
        LEAKS.secret(key)
        self.keys.append(key)
        return key

    def start(self, *args: str, timeout: float = 30) -> Gateway:
        """Start ``bastion serve`` on a free port and wait until it is ready."""
        d = self.config_path.parent
        self.stdout_path, self.stderr_path = d / "stdout.log", d / "stderr.log"
        offset = self.stdout_path.stat().st_size if self.stdout_path.exists() else 0
        out = self.stdout_path.open("a")
        err = self.stderr_path.open("a")
        LEAKS.log_file(self.stderr_path)
        self.proc = subprocess.Popen(
            [*BASTION, "serve", "--config", str(self.config_path), "--port", "0", *args],
            stdout=out, stderr=err, text=True, env=env(), start_new_session=True,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = _LISTENING.search(self.stdout_path.read_text()[offset:])
            if m:
                self.url = m.group(1)
                break
            if self.proc.poll() is not None:
                raise AssertionError(f"bastion exited ({self.proc.returncode}):\n{self.stderr_path.read_text()}")
            time.sleep(0.05)
        else:
            raise AssertionError("bastion did not start listening in time")
        while time.time() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError("bastion did not become ready in time")

    def client(self, key: str | None = None, **kw: Any) -> httpx.Client:
        """An HTTP client for this gateway that records every response body for the leak check."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, transport=RecordingTransport(), timeout=30, **kw)

    def openai(self, key: str, **kw: Any) -> Any:
        """An OpenAI SDK client pointed at this gateway (its traffic recorded too)."""
        import openai

        http_client = httpx.Client(transport=RecordingTransport(), timeout=30)
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, http_client=http_client, max_retries=0, **kw)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        """Stop the process (SIGTERM by default, SIGKILL for crash tests)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=5)


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    """Write ``cfg`` as YAML to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path
