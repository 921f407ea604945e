"""What the request path remembers instead of recomputing is what it would have computed: the
request's source hashes, the metrics' labelled children, the random ids' shape."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

from prometheus_client import generate_latest

from audit.hashing import keyed_hash
from connector.policy.gate import _access_id
from connector.web import context
from connector.web.metrics import Metrics

KEY = b"test-hash-key"


def _request(ip: str | None, agent: str | None) -> Any:
    headers = {} if agent is None else {"User-Agent": agent}
    services = SimpleNamespace(hash_key=KEY)
    return SimpleNamespace(remote=ip, headers=headers, app={context.SERVICES: services})


def test_source_is_the_keyed_hashes_of_ip_and_agent_each_time() -> None:
    for _ in range(2):  # computed, then remembered
        got = context.source(_request("192.0.2.7", "curl/8.0"))
        assert got.ip_hash == keyed_hash(KEY, "192.0.2.7")
        assert got.user_agent_hash == keyed_hash(KEY, "curl/8.0")
    other = context.source(_request("192.0.2.8", "curl/8.0"))
    assert other.ip_hash == keyed_hash(KEY, "192.0.2.8")
    none = context.source(_request(None, None))
    assert (none.ip_hash, none.user_agent_hash) == (None, None)


def test_a_long_agent_is_hashed_but_not_remembered() -> None:
    agent = "x" * (context.MAX_REMEMBERED_AGENT + 1)
    before = context._remembered.cache_info().currsize
    got = context.source(_request("192.0.2.9", agent))
    assert got.user_agent_hash == keyed_hash(KEY, agent)
    assert context._remembered.cache_info().currsize == before


def test_metric_children_count_as_labels_would() -> None:
    metrics = Metrics()
    for _ in range(3):
        metrics.child(metrics.http_requests, "/v1/x", "200").inc()
    metrics.child(metrics.http_requests, "/v1/x", "404").inc()
    assert metrics.child(metrics.http_requests, "/v1/x", "200") is metrics.http_requests.labels(
        "/v1/x", "200"
    )
    text = generate_latest(metrics.registry).decode()
    assert 'connector_http_requests_total{route="/v1/x",status="200"} 3.0' in text
    assert 'connector_http_requests_total{route="/v1/x",status="404"} 1.0' in text
    metrics.observe_gmail("GET", "/gmail/v1/users/me/messages/abc", 200, 0.01)
    metrics.observe_gmail("GET", "/gmail/v1/users/me/messages/abd", 200, 0.02)
    text = generate_latest(metrics.registry).decode()
    assert 'connector_gmail_quota_units_total{method="messages.get"} 10.0' in text
    assert (
        'connector_gmail_request_seconds_count{method="messages.get",status_class="2xx"} 2.0'
        in text
    )


def test_access_ids_are_32_random_hex_digits() -> None:
    ids = {_access_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
