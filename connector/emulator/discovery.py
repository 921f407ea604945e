"""Routes and accepted scopes, read from the Gmail discovery document googleapiclient ships.

Using the same document the client builds requests from keeps paths, HTTP methods and the
per-method scope lists identical to what Google publishes, with no hand-copied tables.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from dataclasses import dataclass
from typing import Any

METHOD_PREFIX = "gmail.users."


@dataclass(frozen=True, slots=True)
class Route:
    method_id: str  # short form, e.g. "messages.get"
    http_method: str
    pattern: re.Pattern[str]
    scopes: frozenset[str]
    upload: bool  # True for the /upload/... variant of a media-upload method


def _compile(path: str) -> re.Pattern[str]:
    regex = re.sub(
        r"\{(\w+)\}", r"(?P<\1>[^/]+)", re.escape(path).replace(r"\{", "{").replace(r"\}", "}")
    )
    return re.compile(f"^/{regex.lstrip('/')}$")


@functools.cache
def discovery_document() -> dict[str, Any]:
    files = importlib.resources.files("googleapiclient") / "discovery_cache" / "documents"
    data: dict[str, Any] = json.loads((files / "gmail.v1.json").read_text(encoding="utf-8"))
    return data


def _walk(resources: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for resource in resources.values():
        found.extend(resource.get("methods", {}).values())
        found.extend(_walk(resource.get("resources", {})))
    return found


@functools.cache
def routes() -> tuple[Route, ...]:
    """All Gmail user routes; literal segments sort before placeholders so 'send' beats '{id}'."""
    built: list[tuple[int, Route]] = []
    for method in _walk(discovery_document()["resources"]):
        short = method["id"].removeprefix(METHOD_PREFIX)
        scopes = frozenset(method.get("scopes", ()))
        path = method["path"]
        built.append(
            (path.count("{"), Route(short, method["httpMethod"], _compile(path), scopes, False))
        )
        simple = method.get("mediaUpload", {}).get("protocols", {}).get("simple", {})
        if simple.get("path"):
            built.append(
                (
                    simple["path"].count("{"),
                    Route(short, method["httpMethod"], _compile(simple["path"]), scopes, True),
                )
            )
    built.sort(key=lambda pair: pair[0])
    return tuple(route for _, route in built)


def match(http_method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
    """Find the route; the flag is True when the path exists under another HTTP method."""
    path_known = False
    for route in routes():
        found = route.pattern.match(path)
        if found is None:
            continue
        if route.http_method == http_method:
            return route, found.groupdict(), True
        path_known = True
    return None, {}, path_known


def scopes_for(method_id: str) -> frozenset[str]:
    for route in routes():
        if route.method_id == method_id:
            return route.scopes
    return frozenset()
