"""How the service listens: aiohttp's HTTP server with the service's limits and problem answers.

aiohttp answers what it cannot parse (a header line over its limit, too many headers, a request
line that is not HTTP) itself, in plain text, before the app and its middleware see a request.
`ServiceRunner` gives the server a request handler whose error answers are problem+json like
every other answer: 431 `request-headers-too-large` for the header limits, 400
`malformed-request` for anything else unparseable, 500 `internal-error` otherwise.

It also bounds how long a connection may take to send a request head. aiohttp 3.x has no
separate header-read timeout: its `keepalive_timeout` closes a connection whose handler is still
waiting for a complete request, counted from the connection's start and from each response, so
it is the bound for a slow-header client as well as the idle keep-alive time
(`CONNECTOR_HEADER_TIMEOUT_SECONDS`).
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler

from connector.background import stop_on_signals
from connector.logs import get_logger
from connector.settings import Settings
from connector.web.problems import ProblemError, ProblemType, problem_response

log = get_logger("connector.web")

# aiohttp's own limits, named so the problem details can quote them.
MAX_LINE_BYTES = 8190  # the request line
MAX_FIELD_BYTES = 8190  # one header (name and value)
MAX_HEADERS = 128
SHUTDOWN_SECONDS = 30.0  # in-flight requests finish within this on SIGTERM

_HEADERS_TOO_LARGE = (
    f"a request header is over {MAX_FIELD_BYTES} bytes, the request line over {MAX_LINE_BYTES} "
    f"bytes, or there are more than {MAX_HEADERS} headers; send fewer or smaller headers"
)


def _problem(status: int, exc: BaseException | None) -> ProblemError:
    # aiohttp signals "too many headers" only by this message on a plain BadHttpMessage.
    too_many = isinstance(exc, BadHttpMessage) and "Too many headers" in exc.message
    if isinstance(exc, LineTooLong) or too_many:
        return ProblemError(ProblemType.REQUEST_HEADERS_TOO_LARGE, _HEADERS_TOO_LARGE)
    if status == HTTPStatus.BAD_REQUEST:
        # Not the parser's text: it quotes the offending bytes, which may be a bearer token.
        return ProblemError(
            ProblemType.MALFORMED_REQUEST, "the request is not well-formed HTTP/1.1"
        )
    return ProblemError(ProblemType.INTERNAL, "an unexpected error occurred")


class ProblemRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering its own errors as problem+json."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: a started response cannot be replaced
            raise ConnectionError("the response was already started; closing the connection")
        problem = _problem(status, exc)
        # aiohttp's own log line would quote the bytes it could not parse: log the kind only.
        log.info(
            "unparseable_request",
            status=problem.status,
            error_type=type(exc).__name__ if exc is not None else None,
        )
        response = problem_response(problem)
        response.force_close()
        return response


class _ProblemServer(web.Server):
    def __call__(self) -> RequestHandler:
        # aiohttp's Server.__call__, with the handler class above
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class ServiceRunner(web.AppRunner):
    """An `AppRunner` with the service's header limits, header-read bound and problem answers
    for requests aiohttp cannot parse: `connector serve`, the demo and the end-to-end tests."""

    def __init__(self, app: web.Application, settings: Settings, **kwargs: Any) -> None:
        super().__init__(
            app, access_log=None, keepalive_timeout=float(settings.header_timeout_seconds),
            max_line_size=MAX_LINE_BYTES, max_field_size=MAX_FIELD_BYTES,
            max_headers=MAX_HEADERS, **kwargs,
        )  # fmt: skip

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # Same state and arguments as the server aiohttp built; only the handler class differs.
        server.__class__ = _ProblemServer
        return server


def serve(
    app: web.Application, settings: Settings, *, host: str, port: int, reuse_port: bool
) -> None:
    """Serve until SIGINT/SIGTERM, then stop accepting, let in-flight requests finish
    (SHUTDOWN_SECONDS) and run the app's cleanup contexts in reverse, as `web.run_app` does.

    The signals set an event (`stop_on_signals`), not aiohttp's `handle_signals`, whose
    `GracefulExit` left a `CleanupError` traceback and cancelled background loops mid-work."""

    async def main() -> None:
        stop = stop_on_signals()
        runner = ServiceRunner(
            app, settings, handle_signals=False, shutdown_timeout=SHUTDOWN_SECONDS
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port, reuse_port=reuse_port).start()
            # where it answers, once the port is open (the address really bound: port 0 too)
            for bound, bound_port, *_ in runner.addresses:
                shown = f"[{bound}]" if ":" in bound else bound
                log.info("listening", url=f"http://{shown}:{bound_port}")
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())
