"""The ``policy`` section of ``bastion.yaml``: where policies live and how they are evaluated."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Largest policy file read, in bytes (a bigger file is refused, not truncated).
DEFAULT_MAX_POLICY_FILE_BYTES = 1024 * 1024
#: Most policies one set may hold.
DEFAULT_MAX_POLICIES = 5000
#: Decisions remembered per policy version (0 turns the cache off).
DEFAULT_DECISION_CACHE_SIZE = 10_000


class PolicySettings(BaseModel):
    """Policy as code: the Cedar files, the shipped defaults, reload and caching."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Cedar files or directories of ``*.cedar`` files, read in sorted order.
    paths: list[str] = Field(default_factory=list)
    #: Load the shipped default policies (``bastion/policy/defaults``) before ``paths``.
    include_defaults: bool = True
    #: Ids of shipped default policies to leave out, e.g. ``["default-invoke-any-model"]``.
    disable: list[str] = Field(default_factory=list)
    #: Seconds between checks of the policy files for changes (0: reload only on request).
    reload_seconds: float = Field(default=2.0, ge=0)
    #: Decisions remembered per policy version; identical requests skip evaluation.
    decision_cache_size: int = Field(default=DEFAULT_DECISION_CACHE_SIZE, ge=0, le=1_000_000)
    #: Time zone of ``context.hour`` and ``context.weekday`` (an IANA name).
    timezone: str = "UTC"
    max_file_bytes: int = Field(default=DEFAULT_MAX_POLICY_FILE_BYTES, gt=0)
    max_policies: int = Field(default=DEFAULT_MAX_POLICIES, gt=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v


def resolve_paths(policy: PolicySettings, base_dir: str | Path | None) -> PolicySettings:
    """The settings with relative ``paths`` made relative to ``base_dir`` (the config file's folder)."""
    if base_dir is None:
        return policy
    base = Path(base_dir)
    paths = [p if Path(p).expanduser().is_absolute() else str(base / p) for p in policy.paths]
    return policy.model_copy(update={"paths": paths})
