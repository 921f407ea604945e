"""The deployment's bearer token for Pub/Sub (never a linked user's token).

A configured static token (the emulator, or a token minted elsewhere) is used as it is;
otherwise Application Default Credentials (a service account on Google Cloud, or
GOOGLE_APPLICATION_CREDENTIALS) with the Pub/Sub scope, refreshed off the event loop.
"""

from __future__ import annotations

import asyncio

import google.auth
import google.auth.exceptions
import google.auth.transport.requests

from connector.gmail.pubsub import PUBSUB_SCOPE, PubSubToken
from connector.settings import SettingsError


def static_token(token: str) -> PubSubToken:
    async def give() -> str:
        return token

    return give


def default_credentials_token() -> PubSubToken:
    """ADC with the Pub/Sub scope; SettingsError (what to set) when there are none."""
    try:
        credentials, _project = google.auth.default(scopes=[PUBSUB_SCOPE])
    except google.auth.exceptions.DefaultCredentialsError:
        raise SettingsError(
            "CONNECTOR_SYNC_MODE=push needs Pub/Sub credentials: run on Google Cloud with a "
            "service account, set GOOGLE_APPLICATION_CREDENTIALS, or set CONNECTOR_PUBSUB_TOKEN"
        ) from None
    lock = asyncio.Lock()

    async def give() -> str:
        async with lock:
            if not credentials.valid:
                request = google.auth.transport.requests.Request()
                await asyncio.to_thread(credentials.refresh, request)
            return str(credentials.token)

    return give
