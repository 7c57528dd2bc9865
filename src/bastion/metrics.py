"""Prometheus metrics, kept in a registry of the gateway's own (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


class Metrics:
    """The gateway's counters and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "bastion_requests", "Requests handled, by endpoint and HTTP status.",
            ["endpoint", "status"], registry=self.registry,
        )
        self.errors = Counter(
            "bastion_errors", "Requests refused or failed, by error code.", ["code"], registry=self.registry,
        )
        self.latency = Histogram(
            "bastion_request_duration_seconds", "Total time per request, upstream included.",
            ["endpoint"], buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.overhead = Histogram(
            "bastion_gateway_overhead_seconds", "The gateway's own time per request, upstream excluded.",
            ["endpoint"], buckets=_OVERHEAD_BUCKETS, registry=self.registry,
        )
        self.upstream = Histogram(
            "bastion_upstream_duration_seconds", "Time waiting on the provider, by provider.",
            ["provider"], buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.audit_commit = Histogram(
            "bastion_audit_commit_seconds", "Time a request waited for its audit event to commit.",
            buckets=_OVERHEAD_BUCKETS, registry=self.registry,
        )
        self.tokens = Counter(
            "bastion_tokens", "Tokens used, by model and kind (prompt, completion).",
            ["model", "kind"], registry=self.registry,
        )
        self.in_flight = Gauge("bastion_requests_in_flight", "Requests being handled.", registry=self.registry)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
