"""HTTP: Bolt's WSGI handler on POST /slack/events, /healthz beside it, served by waitress."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.services import Services

logger = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"
HEALTH_PATH = "/healthz"


def make_wsgi_app(app: App, services: Services) -> Callable[..., Iterable[bytes]]:
    slack = SlackRequestHandler(app, path=SLACK_PATH)

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == HEALTH_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return _health(services, start_response)
        gate = services.work.gate
        gate.request_started()
        try:
            return slack(environ, start_response)
        finally:
            gate.request_finished()

    return wsgi


def make_health_app(services: Services) -> Callable[..., Iterable[bytes]]:
    """Only GET /healthz: what Socket Mode serves on $PORT (Slack's requests arrive over the socket,
    so an HTTP /slack/events there would be unsigned and must not exist)."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") == HEALTH_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return _health(services, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
        return [b"Not Found"]

    return wsgi


def _health(services: Services, start_response: Callable[..., Any]) -> Iterable[bytes]:
    ok, body = services.health()
    payload = json.dumps(body).encode()
    start_response(
        "200 OK" if ok else "503 Service Unavailable",
        [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
    )
    return [payload]


def serve(wsgi: Callable[..., Iterable[bytes]], port: int, host: str = "0.0.0.0", threads: int = 16) -> None:
    """Blocks serving HTTP until interrupted."""
    import waitress

    logger.info("listening on http://%s:%s%s", host, port, SLACK_PATH)
    waitress.serve(wsgi, host=host, port=port, threads=threads, ident="aws-support-bot")


def make_server(wsgi: Callable[..., Iterable[bytes]], port: int = 0, host: str = "127.0.0.1", threads: int = 16):
    """A waitress server not yet running: run `.run()` in a thread, and stop it with stop_server()."""
    from waitress.server import create_server

    return create_server(wsgi, host=host, port=port, threads=threads, ident="aws-support-bot")


def stop_server(server: Any, thread: threading.Thread | None) -> None:
    """Stop a waitress server whose loop runs in `thread`, closing nothing while another thread uses it.

    `server.close()` from here would close sockets under the loop's select() (EBADF in the loop
    thread) and under request threads still writing. Instead: empty the loop's map so the loop
    returns, let the request threads finish, and only then close the sockets, from this thread.
    """
    from waitress import wasyncore

    dispatchers = dict(server._map)
    server._map.clear()  # the loop runs `while map:`
    if thread is not None:
        with contextlib.suppress(OSError):
            server.pull_trigger()  # wake its select() now rather than at its 1 s timeout
        thread.join(timeout=5)
    server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
    wasyncore.close_all(dispatchers)
