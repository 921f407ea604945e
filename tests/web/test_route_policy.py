"""The route-level decision is the policy's: a table of routes to operations, checked both ways."""

from __future__ import annotations

import pytest

from audit.vocab import ActorKind, Purpose
from connector.policy.rules import may_attempt
from connector.policy.vocab import Operation, Reason
from connector.web.app import all_routes
from connector.web.route_policy import ROUTE_OPERATIONS, permitted_roles, route_operation


def test_every_authenticated_route_names_its_operation() -> None:
    """No authenticated route is missing from the table, and the table names no dead route."""
    authenticated = {(r.method, r.path) for r in all_routes() if r.roles is not None}
    assert authenticated == set(ROUTE_OPERATIONS)


def test_declared_roles_are_what_the_policy_permits() -> None:
    """The roles a route documents in OpenAPI are exactly those the policy lets attempt it."""
    mismatched = {
        (r.method, r.path): (
            sorted(r.roles),
            sorted(permitted_roles(route_operation(r.method, r.path))),
        )
        for r in all_routes()
        if r.roles is not None and r.roles != permitted_roles(route_operation(r.method, r.path))
    }
    assert mismatched == {}


def test_an_unknown_route_is_an_error_at_startup() -> None:
    """A route that names no operation cannot be installed silently."""
    with pytest.raises(LookupError, match="names no operation"):
        route_operation("GET", "/v1/nowhere")


@pytest.mark.parametrize(
    ("kind", "operation", "purposes", "reason"),
    [
        (
            ActorKind.ADMIN,
            Operation.AUDIT_READ,
            {Purpose.SECURITY},
            Reason.OPERATION_NOT_PERMITTED,
        ),
        (
            ActorKind.REVIEWER,
            Operation.CONTENT_READ,
            {Purpose.SECURITY},
            Reason.OPERATION_NOT_PERMITTED,
        ),
        (
            ActorKind.OPERATOR,
            Operation.CONTENT_READ,
            {Purpose.USER_FEATURE},
            Reason.PURPOSE_NOT_PERMITTED,
        ),
        (ActorKind.USER, Operation.CONTENT_READ, {Purpose.SECURITY}, Reason.PURPOSE_NOT_PERMITTED),
    ],
)
def test_may_attempt_refuses_with_the_one_reason(
    kind: ActorKind, operation: Operation, purposes: set[Purpose], reason: Reason
) -> None:
    """Each way a route can be out of reach gives exactly its reason."""
    verdict = may_attempt(kind, operation, frozenset(purposes))
    assert not verdict.allowed
    assert verdict.reasons == (reason,)


def test_may_attempt_allows_when_one_purpose_fits() -> None:
    """An operator may attempt a support read: some grant covers one of the route's purposes."""
    purposes = frozenset({Purpose.CONSENTED_SUPPORT, Purpose.SECURITY, Purpose.LEGAL})
    verdict = may_attempt(ActorKind.OPERATOR, Operation.CONTENT_READ, purposes)
    assert verdict.allowed
    assert verdict.rule == "operator.consented_support"
