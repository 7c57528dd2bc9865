"""The ``limits:`` section of bastion.yaml: rules, the counter backend and anomaly alerts."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Scope = Literal["user", "key", "group", "tenant", "global", "workflow"]
Metric = Literal["requests", "tokens", "spend"]
Window = Literal["second", "minute", "hour", "day", "month"]

#: Rolling windows are enforced as a smooth rate (GCRA); the rest are UTC calendar windows.
ROLLING_WINDOW_SECONDS: dict[str, int] = {"second": 1, "minute": 60, "hour": 3600}
CALENDAR_WINDOWS: frozenset[str] = frozenset({"day", "month"})

#: Largest limit a rule may declare; keeps the counter arithmetic exact in doubles (Lua).
MAX_LIMIT = 10**9


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LimitRule(_Section):
    """One limit: who it binds (scope + match), what it counts, over which window, how much."""

    #: Stable name, shown in refusals and alerts and used in counter keys.
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    #: ``user`` (per subject), ``key`` (per API key / app), ``group``, ``tenant``, ``global``, or
    #: ``workflow`` (per agent run: the ``X-Bastion-Workflow-Id`` header, within its user).
    scope: Scope
    #: A subject, key id, group or tenant name, or ``*`` for each one separately.
    match: str = Field("*", min_length=1, max_length=256)
    metric: Metric
    window: Window
    #: Requests, tokens, or US dollars (spend) per window.
    limit: float = Field(gt=0, le=MAX_LIMIT)
    #: ``hard`` refuses with 429; ``soft`` only raises an alert.
    mode: Literal["hard", "soft"] = "hard"
    #: Only count requests for these models; empty means every model.
    models: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _coherent(self) -> LimitRule:
        if self.scope == "global" and self.match != "*":
            raise ValueError("a global limit has no match (use '*')")
        if self.metric != "spend" and self.limit != int(self.limit):
            raise ValueError("request and token limits must be whole numbers")
        if self.metric == "spend" and self.limit < 1e-6:
            raise ValueError("a spend limit must be at least one micro-dollar")
        return self


class AnomalySettings(_Section):
    """Alerts on a key or user whose rate jumps far above its own baseline."""

    enabled: bool = True
    #: Length of one observation window, in seconds.
    window_seconds: float = Field(60.0, gt=0, le=86400)
    #: Weight of the newest window in the moving baseline (EWMA).
    alpha: float = Field(0.2, gt=0, le=1)
    #: Alert when the current window exceeds the baseline by this factor ...
    factor: float = Field(5.0, gt=1)
    #: ... and holds at least this many requests (small numbers are noise).
    min_requests: int = Field(30, ge=1)
    #: ... or at least this many tokens.
    min_tokens: int = Field(20000, ge=1)
    #: Windows observed before a subject has a baseline at all.
    warmup_windows: int = Field(3, ge=1)
    #: Subjects tracked at once; the least recently seen are forgotten first.
    max_subjects: int = Field(100_000, ge=10)


class LimitSettings(_Section):
    """Request, token and spend limits and where their counters live."""

    enabled: bool = True
    #: ``memory`` (one process) or ``redis`` (shared by every replica, exact across them).
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Prefix of every Redis key, so several deployments can share one server.
    key_prefix: str = Field("bastion:limits", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    #: Seconds one Redis round trip may take before it counts as a backend failure.
    redis_timeout_seconds: float = Field(0.5, gt=0, le=30)
    #: Connections to Redis per replica; requests beyond wait for one (within the timeout).
    redis_max_connections: int = Field(50, ge=1, le=10000)
    #: What to do when the counters cannot be reached: refuse (503) or admit unmetered.
    on_backend_error: Literal["fail_closed", "fail_open"] = "fail_closed"
    #: Counters kept by the in-process backend; beyond it the backend counts as failed.
    memory_max_keys: int = Field(1_000_000, ge=100)
    #: Completion tokens reserved when a request names no max_tokens.
    default_completion_tokens: int = Field(1024, ge=1, le=1_000_000)
    #: Characters per token when estimating prompts and counting streamed text.
    chars_per_token: float = Field(4.0, gt=0, le=16)
    #: Completion tokens a stream reserves at a time once its first reservation is spent.
    stream_reserve_tokens: int = Field(256, ge=1, le=100_000)
    #: Seconds between two alerts for the same soft limit and subject.
    soft_alert_interval_seconds: float = Field(60.0, ge=0)
    rules: list[LimitRule] = Field(default_factory=list)
    anomaly: AnomalySettings = AnomalySettings()

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, v: str) -> str:
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("limits.redis_url must start with redis://, rediss:// or unix://")
        return v

    @model_validator(mode="after")
    def _unique_names(self) -> LimitSettings:
        names = [r.name for r in self.rules]
        if len(names) != len(set(names)):
            raise ValueError("limit rule names must be unique")
        return self


class ModelPrice(_Section):
    """What a model costs, in US dollars per million tokens."""

    input_per_mtok: float = Field(0.0, ge=0)
    output_per_mtok: float = Field(0.0, ge=0)
