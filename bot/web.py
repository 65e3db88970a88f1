"""HTTP: Bolt's WSGI handler on POST /slack/events, /healthz beside it, served by waitress
(and Socket Mode's handler, the other way Slack's requests reach Bolt).

Nothing from Slack's path reaches Bolt unchecked: the body is capped (by waitress, and by
Content-Length before a byte is read), its signature verified on the raw bytes, and a request
already served is refused as a replay, all before Bolt parses anything.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.ack_first import AckFirst, answering
from bot.services import Services
from bot.store.backend import Table
from bot.store.claims import DECIDED, Claims, Confirmation, fast_claims
from bot.work import OrderedWork

logger = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
# Slack's payloads stay below this (its largest, a view submission, carries one modal of at most 100 blocks).
MAX_BODY_BYTES = 1024 * 1024
# Slack's signatures are valid 5 minutes either side of now; a claim older than this cannot match.
REPLAY_WINDOW_SECONDS = 10 * 60
PRUNE_EVERY_SECONDS = 60

StartResponse = Callable[..., Any]
# Where SlackDoor.admit leaves the admitted request's claim confirmation for the handler (a WSGI environ key).
CLAIM_CONFIRMATION = "bot.claim_confirmation"


def make_wsgi_app(app: App, services: Services) -> Callable[..., Iterable[bytes]]:
    slack = SlackRequestHandler(app, path=SLACK_PATH)
    claimed = services.store.table("requests")
    # On SQLite, their own writer, sharing the acks' gate: behind the after-ack pool, a claim waited for
    # a free worker as long as slow AWS calls held them all, and a kill -9 meanwhile forgot it.
    writer = OrderedWork(max_workers=1, name="claims", gate=services.work.gate)
    claims = fast_claims(services.store, claimed, writer.submit, services.work.gate.wait_for_lull)
    services.last_writes.append(claims.flush)  # what is still queued at shutdown, after any write under way
    services.last_writes.append(claims.close)
    services.last_writes.append(writer.shutdown)
    replays = ReplayGuard(claimed, prune=services.work.submit, claims=claims)
    door = SlackDoor(services.settings.slack_signing_secret, replays)

    def wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD")
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            return _health(services, start_response)
        if path != SLACK_PATH or method != "POST":
            return _answer(start_response, "404 Not Found", b"Not Found", "text/plain")
        refusal = door.admit(environ)
        if refusal is not None:
            return _answer(start_response, *refusal)
        # Counted only once admitted: a stream of unsigned junk must not hold back every after-ack job.
        gate = services.work.gate
        gate.request_started()
        try:
            with answering(environ[CLAIM_CONFIRMATION].won):
                return slack(environ, start_response)
        finally:
            gate.request_finished()

    return wsgi


class CountedSocketModeHandler(SocketModeHandler):
    """Bolt's Socket Mode handler, each request counted for the after-ack gate until it is answered.

    Over HTTP, make_wsgi_app counts every admitted request; Socket Mode's never pass there, and
    uncounted, after-ack work started beside the acks of a burst still being answered.
    """

    def __init__(self, app: App, app_token: str, gate: AckFirst) -> None:
        super().__init__(app, app_token)
        self.gate = gate

    def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        self.gate.request_started()
        try:
            # Over Slack's own authenticated socket a request cannot be replayed: its work needs no claim.
            with answering(DECIDED.won):
                super().handle(client, req)
        finally:
            self.gate.request_finished()


def socket_mode_handler(app: App, services: Services) -> SocketModeHandler:
    return CountedSocketModeHandler(app, services.settings.slack_app_token, services.work.gate)


class SlackDoor:
    """What a request must pass before Bolt reads it: size, signature, first time seen."""

    def __init__(self, signing_secret: str, replays: ReplayGuard) -> None:
        self.verifier = SignatureVerifier(signing_secret)
        self.replays = replays

    def admit(self, environ: dict[str, Any]) -> tuple[str, bytes, str] | None:
        """None: let Bolt have it (environ's input rewound to the verified body); else the refusal."""
        try:
            declared = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return "400 Bad Request", b"Bad Request", "text/plain"
        if declared > MAX_BODY_BYTES:
            return "413 Request Entity Too Large", b"Request Entity Too Large", "text/plain"
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE")
        body = environ["wsgi.input"].read(declared) if declared > 0 and timestamp and signature else b""
        if not self._signed(body, timestamp, signature):
            return "401 Unauthorized", b'{"error": "invalid request"}', "application/json"
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return "400 Bad Request", b"Bad Request", "text/plain"
        # Slack's own Events API retries (X-Slack-Retry-Num) go on to Bolt, where the event's keys make a
        # redelivery harmless, whether or not Slack signed it anew. Neither that header nor the content
        # type is signed: only a body that is itself an event skips the claim (review19: a replayed
        # command with both headers added was served again, on every replica).
        retry = bool(environ.get("HTTP_X_SLACK_RETRY_NUM")) and _is_event(body)
        confirmation: Confirmation = DECIDED
        if not retry:
            admitted = self.replays.admit(str(signature), int(str(timestamp)))
            if admitted is None:
                logger.warning("refused a replayed Slack request (signature already served)")
                return "200 OK", b"", "text/plain"
            confirmation = admitted
        environ[CLAIM_CONFIRMATION] = confirmation
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return None

    def _signed(self, body: bytes, timestamp: str | None, signature: str | None) -> bool:
        try:
            return self.verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
        except ValueError:  # a timestamp that is not a number
            return False


def _is_event(body: bytes) -> bool:
    """The signed body is an Events API envelope (only a retry's headers are read before this)."""
    if not body.lstrip().startswith(b"{"):
        return False
    try:
        envelope = json.loads(body)
    except ValueError:
        return False
    return isinstance(envelope, dict) and envelope.get("type") == "event_callback"


class ReplayGuard:
    """A signed request is served once: its signature is claimed before dispatch.

    Slack signs `v0:{timestamp}:{body}`, so a replay carries the same signature; the claim is atomic
    for every process that can serve it, so two threads (or replicas) receiving the same request serve
    it once. Claims are made the fast way (bot.store.claims), as every ack waits for one: decided in
    this process's memory and written right after. Where other replicas share the store, the
    database confirms the claim before the request's after-ack work runs (bot.ack_first), so a
    request that reached two replicas is acked by both and served by one. A crash (of the bot, or of
    the database server) may forget the claims of its last moments, and a replay of one of those
    requests within Slack's 5 minutes is served again. What such a request changes or posts is keyed
    by what Slack gives once per action (the trigger_id of a `reply` or a `digest`, a form's view id,
    a click's action ts), or is already so (a link, a watch), so the replay finds it done: at worst
    the command's answer is given twice, never a case, a reply, a card or a digest.
    """

    def __init__(
        self,
        table: Table,
        prune: Callable[[Callable[[], None]], None],
        claims: Claims,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.table = table
        self._claims = claims
        self._prune = prune
        self._clock = clock
        self._pruned_at = clock()
        self._lock = threading.Lock()

    def admit(self, signature: str, timestamp: int) -> Confirmation | None:
        """None for a replay this process has seen; else the claim's confirmation (bot.store.claims)."""
        admitted = self._claims.admit(signature, timestamp)
        self._maybe_prune()
        return admitted

    def claim(self, signature: str, timestamp: int) -> bool:
        """True when the request is this process's to serve (admitted and confirmed)."""
        admitted = self.admit(signature, timestamp)
        return admitted is not None and admitted.won()

    def _maybe_prune(self) -> None:
        with self._lock:
            if self._clock() - self._pruned_at < PRUNE_EVERY_SECONDS:
                return
            self._pruned_at = self._clock()
        self._prune(self._prune_now)

    def _prune_now(self) -> None:
        self.prune()

    def prune(self, now: float | None = None) -> int:
        """Drop claims whose request can no longer pass the signature check; returns how many."""
        horizon = (time.time() if now is None else now) - REPLAY_WINDOW_SECONDS
        # By age, before the table: another replica may have deleted them from a shared table first, and
        # memory stays bounded while the database is away.
        self._claims.forget_older(horizon)
        # One statement: read row by row, every replica's minute spent 60 ms of CPU on 8000 claims
        # (PostgreSQL) while it served acks, and 230 ms more on deleting 2600 of them one by one.
        old = self.table.delete_stamped_before(horizon)
        self._claims.forget(old)
        return len(old)


def make_health_app(services: Services) -> Callable[..., Iterable[bytes]]:
    """Only GET /healthz: what Socket Mode serves on $PORT (Slack's requests arrive over the socket,
    so an HTTP /slack/events there would be unsigned and must not exist)."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") == HEALTH_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return _health(services, start_response)
        return _answer(start_response, "404 Not Found", b"Not Found", "text/plain")

    return wsgi


def _health(services: Services, start_response: StartResponse) -> Iterable[bytes]:
    ok, body = services.health()
    status = "200 OK" if ok else "503 Service Unavailable"
    return _answer(start_response, status, json.dumps(body).encode(), "application/json")


def _answer(start_response: StartResponse, status: str, body: bytes, content_type: str) -> Iterable[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


# waitress refuses a larger body by its Content-Length, or as soon as a chunked one grows past
# it, before the app sees it (it refuses from max_request_body_size on, hence the + 1).
_WAITRESS: dict[str, Any] = {"ident": "aws-support-bot", "max_request_body_size": MAX_BODY_BYTES + 1}


def serve(wsgi: Callable[..., Iterable[bytes]], port: int, host: str = "0.0.0.0", threads: int = 16) -> None:
    """Blocks serving HTTP until interrupted."""
    import waitress

    logger.info("listening on http://%s:%s%s", host, port, SLACK_PATH)
    waitress.serve(wsgi, host=host, port=port, threads=threads, **_WAITRESS)


def make_server(wsgi: Callable[..., Iterable[bytes]], port: int = 0, host: str = "127.0.0.1", threads: int = 16):
    """A waitress server not yet running: run `.run()` in a thread, and stop it with stop_server()."""
    from waitress.server import create_server

    return create_server(wsgi, host=host, port=port, threads=threads, **_WAITRESS)


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
