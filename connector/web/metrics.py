"""Prometheus metrics: accesses by purpose and decision, Gmail latency and quota units,
audit append latency, policy violations. One registry per app (tests build many apps).

Accesses are counted where they are recorded: a wrapper around the audit sink sees every
decision event the gate and the stores write, so the counts and the evidence cannot disagree.
"""

from __future__ import annotations

import os
import re
import time
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

from audit.event import AppendReceipt, AuditEvent
from audit.sink import AuditSink
from audit.vocab import Decision, Phase, Severity

_Metric = TypeVar("_Metric", Counter, Histogram)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # set by the worker pool (connector.web.workers)

# Per-method quota units (Gmail's documented table); the path decides the method.
_UNITS: tuple[tuple[str, re.Pattern[str], int, str], ...] = tuple(
    (method, re.compile(pattern), units, name)
    for method, pattern, units, name in (
        ("GET", r"/users/[^/]+/messages/[^/]+/attachments/[^/]+$", 5, "attachments.get"),
        ("GET", r"/users/[^/]+/messages/[^/]+$", 5, "messages.get"),
        ("GET", r"/users/[^/]+/messages$", 5, "messages.list"),
        ("POST", r"/users/[^/]+/messages/send$", 100, "messages.send"),
        ("GET", r"/users/[^/]+/threads/[^/]+$", 10, "threads.get"),
        ("GET", r"/users/[^/]+/drafts$", 5, "drafts.list"),
        ("GET", r"/users/[^/]+/drafts/[^/]+$", 5, "drafts.get"),
        ("POST", r"/users/[^/]+/drafts/send$", 100, "drafts.send"),
        ("POST", r"/users/[^/]+/drafts$", 10, "drafts.create"),
        ("PUT", r"/users/[^/]+/drafts/[^/]+$", 15, "drafts.update"),
        ("DELETE", r"/users/[^/]+/drafts/[^/]+$", 10, "drafts.delete"),
        ("GET", r"/users/[^/]+/profile$", 1, "users.getProfile"),
        ("GET", r"/users/[^/]+/labels$", 1, "labels.list"),
        ("GET", r"/users/[^/]+/history$", 2, "history.list"),
        ("POST", r"/batch(/gmail/v1)?$", 0, "batch"),
    )
)


def gmail_method(method: str, path: str) -> tuple[str, int]:
    """(Gmail method name, quota units) for a request path; ("other", 0) when unknown."""
    for verb, pattern, units, name in _UNITS:
        if verb == method and pattern.search(path):
            return name, units
    return "other", 0


class Metrics:
    def __init__(self) -> None:
        # A worker of `serve --workers N`: the variable is set before the process starts, so
        # prometheus_client keeps every value in the pool's shared files.
        self._pool = os.environ.get(MULTIPROC_ENV)
        self.registry = CollectorRegistry()
        self.accesses = Counter(
            "connector_accesses",
            "Access decisions recorded in the audit log",
            ["purpose", "decision", "actor_kind"],
            registry=self.registry,
        )
        self.policy_violations = Counter(
            "connector_policy_violations",
            "Denials of forbidden purposes or cross-account attempts",
            ["purpose"],
            registry=self.registry,
        )
        self.audit_append = Histogram(
            "connector_audit_append_seconds",
            "Time until an audit event is durably committed",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.audit_failures = Counter(
            "connector_audit_append_failures",
            "Audit appends that failed (the access failed closed)",
            registry=self.registry,
        )
        self.gmail_latency = Histogram(
            "connector_gmail_request_seconds",
            "Gmail API request latency",
            ["method", "status_class"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
            registry=self.registry,
        )
        self.quota_units = Counter(
            "connector_gmail_quota_units",
            "Gmail quota units spent (documented per-method costs)",
            ["method"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "connector_http_requests",
            "HTTP requests served",
            ["route", "status"],
            registry=self.registry,
        )
        # (metric, label values) -> its child: `labels()` checks and locks on every call, and
        # every label here takes a few values (routes, statuses, purposes, Gmail methods).
        self._children: dict[tuple[int, tuple[str, ...]], Counter | Histogram] = {}

    def child(self, metric: _Metric, *values: str) -> _Metric:
        """`metric.labels(*values)`, built once per distinct label values."""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found  # type: ignore[return-value]  # built by this metric's labels()

    def render(self) -> bytes:
        if self._pool:
            # one of `serve --workers N`: report the whole pool, not the worker that answered
            pool = CollectorRegistry()
            multiprocess.MultiProcessCollector(pool)  # type: ignore[no-untyped-call]
            return generate_latest(pool)
        return generate_latest(self.registry)

    def observe_gmail(self, verb: str, path: str, status: int, seconds: float) -> None:
        """Told of every exchange with Gmail by the Gmail client's transport."""
        name, units = gmail_method(verb, path)
        self.child(self.gmail_latency, name, f"{status // 100}xx").observe(seconds)
        if units:
            self.child(self.quota_units, name).inc(units)


class MeteredSink:
    """An `AuditSink` wrapper: times each append and counts decisions by purpose."""

    def __init__(self, inner: AuditSink, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def append(self, event: AuditEvent) -> AppendReceipt:
        started = time.perf_counter()
        try:
            receipt = await self._inner.append(event)
        except Exception:
            self._metrics.audit_failures.inc()
            raise
        self._metrics.audit_append.observe(time.perf_counter() - started)
        if event.phase is not Phase.OUTCOME:
            purpose = event.purpose.value if event.purpose is not None else "none"
            metrics = self._metrics
            metrics.child(metrics.accesses, purpose, event.decision.value, event.actor.kind).inc()
            if event.decision is Decision.DENY and event.severity is Severity.HIGH:
                metrics.child(metrics.policy_violations, purpose).inc()
        return receipt
