"""The HTTP service: aiohttp app factory, caller authentication, routes and problem responses.

Handlers are thin: parse and validate, call a service (which calls the gate), map errors.
"""

from connector.web.app import create_app

__all__ = ["create_app"]
