"""Atomic policy reload: a new set replaces the running one only after it compiles and validates."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.errors import ConfigError
from bastion.policy.config import PolicySettings, resolve_paths
from bastion.policy.engine import PolicyEngine, compile_settings
from bastion.policy.source import policy_files

if TYPE_CHECKING:
    from bastion.settings import ProviderSettings, Settings

log = logging.getLogger("bastion.policy")

Fingerprint = tuple[tuple[str, int, int], ...]


class PolicyStore:
    """Holds the current engine; ``reload()`` or the watcher swaps it in one assignment.

    Requests read ``store.engine`` once and keep that engine for their whole
    decision, so a reload never changes a decision half-way, and nothing waits.
    A policy set that fails to compile is logged and kept in ``last_error``;
    the working engine stays in place.
    """

    def __init__(self, settings: PolicySettings, *, providers: Sequence[ProviderSettings] = ()) -> None:
        self.settings = settings
        self._providers = tuple(providers)
        self._fingerprint = self._scan()
        # The first load must succeed: there is no working set to fall back on (fail closed).
        self._engine = PolicyEngine.load(settings, providers=self._providers)
        self.last_error: str | None = None
        self.loaded_at = time.time()
        self.reloads = 0
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, config_path: str | Path | None = None) -> PolicyStore:
        """The store for a whole configuration; relative policy paths are taken from the config's folder."""
        base = Path(config_path).parent if config_path is not None else None
        return cls(resolve_paths(settings.policy, base), providers=settings.providers)

    @property
    def engine(self) -> PolicyEngine:
        """The engine in force."""
        return self._engine

    @property
    def version(self) -> str:
        """The version of the policy set in force."""
        return self._engine.version

    def _scan(self) -> Fingerprint:
        out = []
        for p in policy_files(self.settings.paths):
            try:
                st = p.stat()
                out.append((str(p), st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((str(p), -1, -1))
        # Directories count too: a file added or removed changes the listing above,
        # and a directory's own mtime catches renames that keep the same names.
        for raw in self.settings.paths:
            d = Path(raw).expanduser()
            if d.is_dir():
                out.append((str(d), d.stat().st_mtime_ns, 0))
        return tuple(out)

    def reload(self) -> bool:
        """Compile the files again; swap the engine if they are valid. True when swapped."""
        fingerprint = self._scan()
        compiled = compile_settings(self.settings)
        self._fingerprint = fingerprint
        if not compiled.ok:
            self.last_error = "; ".join(str(p) for p in compiled.problems)
            log.error("policy reload refused, keeping version %s: %s", self.version, self.last_error)
            return False
        if compiled.version == self._engine.version:
            self.last_error = None
            return False
        try:
            engine = PolicyEngine(compiled, self.settings, self._providers)
        except (ConfigError, ValueError) as exc:
            self.last_error = str(exc)
            log.error("policy reload refused, keeping version %s: %s", self.version, exc)
            return False
        old, self._engine = self._engine.version, engine
        self.last_error = None
        self.loaded_at = time.time()
        self.reloads += 1
        log.info("policy set %s replaced %s (%d policies)", engine.version, old, len(engine.policies))
        return True

    def check(self) -> bool:
        """Reload if any policy file changed since the last look. True when swapped."""
        if self._scan() == self._fingerprint:
            return False
        return self.reload()

    async def watch(self) -> None:
        """Poll the files every ``reload_seconds`` until cancelled (compiling off the event loop)."""
        interval = self.settings.reload_seconds
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.check)
            except Exception:  # noqa: BLE001 - the watcher must outlive any one bad reload
                log.exception("policy watcher failed; keeping version %s", self.version)

    def start(self) -> None:
        """Start the watcher task on the running loop (no-op when reload_seconds is 0)."""
        if self._task is None and self.settings.reload_seconds > 0:
            self._task = asyncio.get_running_loop().create_task(self.watch(), name="policy-watch")

    async def stop(self) -> None:
        """Stop the watcher task."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    def status(self) -> dict[str, object]:
        """What /readyz and the admin API show: version, count, last error."""
        return {
            "version": self.version,
            "policies": len(self._engine.policies),
            "loaded_at": self.loaded_at,
            "reloads": self.reloads,
            "last_error": self.last_error,
        }
