"""Prometheus metrics, kept in a registry of the gateway's own (no global state)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

M = TypeVar("M", Counter, Histogram)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


class Labelled(Generic[M]):
    """A labelled metric whose children are looked up once per label set, not on every request."""

    def __init__(self, metric: M) -> None:
        self.metric: M = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def labels(self, *values: str) -> Any:
        """The child for ``values`` (the label sets are few: endpoints, statuses, codes, models)."""
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child


class Metrics:
    """The gateway's counters and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Labelled(Counter(
            "bastion_requests", "Requests handled, by endpoint and HTTP status.",
            ["endpoint", "status"], registry=self.registry,
        ))
        self.errors = Labelled(Counter(
            "bastion_errors", "Requests refused or failed, by error code.", ["code"], registry=self.registry,
        ))
        self.latency = Labelled(Histogram(
            "bastion_request_duration_seconds", "Total time per request, upstream included.",
            ["endpoint"], buckets=_LATENCY_BUCKETS, registry=self.registry,
        ))
        self.overhead = Labelled(Histogram(
            "bastion_gateway_overhead_seconds", "The gateway's own time per request, upstream excluded.",
            ["endpoint"], buckets=_OVERHEAD_BUCKETS, registry=self.registry,
        ))
        self.upstream = Labelled(Histogram(
            "bastion_upstream_duration_seconds", "Time waiting on the provider, by provider.",
            ["provider"], buckets=_LATENCY_BUCKETS, registry=self.registry,
        ))
        self.audit_commit = Histogram(
            "bastion_audit_commit_seconds", "Time a request waited for its audit event to commit.",
            buckets=_OVERHEAD_BUCKETS, registry=self.registry,
        )
        self.tokens = Labelled(Counter(
            "bastion_tokens", "Tokens used, by model and kind (prompt, completion).",
            ["model", "kind"], registry=self.registry,
        ))
        self.in_flight = Gauge("bastion_requests_in_flight", "Requests being handled.", registry=self.registry)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
