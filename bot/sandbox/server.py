"""The sandbox over HTTP: AWS's JSON 1.1 protocol on `POST /`, and a small control API.

botocore sends `POST /` with `X-Amz-Target: AWSSupport_20130415.<Operation>` and a JSON body;
signatures are accepted without checking, so any credentials work. Control endpoints live under
`/_sandbox/` for people and separate processes; tests in the same process use SandboxServer's
methods directly:

    POST   /_sandbox/faults  {"operation": "CreateCase" | "*", "code": "...", "count": 1, "message": null}
    DELETE /_sandbox/faults  clear injected faults
    POST   /_sandbox/reply   {"case_id", "body", "attachments": [{"fileName", "data": base64}],
                              "submitted_by", "status"}  -> the new communication
    POST   /_sandbox/config  {"latency_seconds", "reply_delay_seconds" (null: silent), "check_count" (null: built-in),
                              "attachment_sets_per_window" (new sets per 10 minutes before AttachmentLimitExceeded),
                              "hostile_prefix" (text put before every free-text member of every answer)}
    POST   /_sandbox/service {"code", "name", "categories": [{"code", "name"}]}  one more service
    POST   /_sandbox/clock   {"advance_seconds": 3600}  (attachment sets expire, refreshes complete)
    GET    /_sandbox/calls   {"calls": {"CreateCase": 1, ...}};  DELETE resets them
    GET    /_sandbox/health  {"status": "ok", "cases": n, "checks": n}
    POST   /_sandbox/accounts {"deny" | "allow": alias or ID, "external_id": "..." | null,
                              "member": {"id", "name", "state"}}  -> the emulated accounts
Every control acts in the account named by `?account=<alias or ID>` (the first one without).
With `accounts=N`, STS, Organizations and each account's Support share this port (bot.sandbox.accounts).

With `events=True`, SQS's JSON protocol (`X-Amz-Target: AmazonSQS.*`) is served on the same port and
every case change, of every account, lands in the queue at `events_queue_url` as a Support Case Update
(case_events.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn

from bot.sandbox import sqs
from bot.sandbox.accounts import SandboxAccounts
from bot.sandbox.case_events import QUEUE_NAME, CaseEventEmitter
from bot.sandbox.catalog import NEW_SETS_PER_WINDOW, ServiceEntry
from bot.sandbox.control import CONTROL_ROUTES, ControlError
from bot.sandbox.engineer import Engineer
from bot.sandbox.errors import SupportError
from bot.sandbox.faults import CONNECTION_DROPPED, DroppedConnection, Fault, Faults
from bot.sandbox.hostile import disguise
from bot.sandbox.operations import SupportApi
from bot.sandbox.persistence import JsonStateFile
from bot.sandbox.records import CaseRecord
from bot.sandbox.state import ACCOUNT_ID, AWS_ENGINEER, SupportState
from bot.sandbox.times import Clock
from bot.sandbox.trusted_advisor import TrustedAdvisor

logger = logging.getLogger(__name__)

TARGET_PREFIX = "AWSSupport_20130415."
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
CONTROL_PREFIX = "/_sandbox/"


class SandboxServer:
    """An AWS Support emulator that real boto3 talks to over real HTTP."""

    def __init__(
        self,
        reply_delay_seconds: float | None = 30.0,
        latency_seconds: float = 0.0,
        state_path: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        accounts: int = 1,
        clock: Clock | None = None,
        events: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.clock = clock or Clock()
        # One lock for all state, taken before the file's: saves never deadlock with requests.
        self._lock = threading.RLock()
        self.state = SupportState(self.clock, on_change=self._changed, lock=self._lock)
        self.trusted_advisor = TrustedAdvisor(self.clock, on_change=self._persist, lock=self._lock)
        self.api = SupportApi(self.state, self.trusted_advisor)
        self.engineer = Engineer(self.state, reply_delay_seconds)
        self.faults = Faults()
        self._latency = latency_seconds
        self._hostile_prefix = ""
        self._calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()
        self._file = JsonStateFile(state_path) if state_path else None
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self.sqs = sqs.SqsApi(ACCOUNT_ID) if events else None
        self.case_events: CaseEventEmitter | None = None
        self._load()
        self.accounts = SandboxAccounts(self, accounts, state_path)
        if self.sqs is not None:
            self.case_events = CaseEventEmitter(self.state, self.sqs.queue(QUEUE_NAME))

    # Life --------------------------------------------------------------------------------------

    def start(self) -> SandboxServer:
        self._httpd = _HttpServer((self.host, self.port), _Handler, self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            # A short poll keeps stop() quick: shutdown() waits for the loop's next look at its flag.
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="sandbox-http",
            daemon=True,
        )
        self._thread.start()
        self.engineer.start()
        self.accounts.start()
        return self

    def stop(self) -> None:
        self.engineer.stop()
        self.accounts.stop()
        if self.sqs is not None:
            self.sqs.close()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    # Control -----------------------------------------------------------------------------------

    def inject_fault(
        self,
        operation: str,
        code: str,
        count: int = 1,
        message: str | None = None,
        after_processing: bool = False,
        late_seconds: float = 0.0,
    ) -> None:
        """The next `count` calls of `operation` ("*" = any) fail with `code` (after doing the work
        when `after_processing`: the answer is lost, not the request; `late_seconds` after failing: AWS
        still at work). `code` CONNECTION_DROPPED closes the connection without an answer."""
        self.faults.add(operation, code, count, message, after_processing, late_seconds)

    def clear_faults(self) -> None:
        self.faults.clear()

    def add_aws_reply(
        self,
        case_id: str,
        body: str,
        attachments: Iterable[tuple[str, bytes]] = (),
        submitted_by: str = AWS_ENGINEER,
        status: str | None = None,
    ) -> dict[str, Any]:
        """An AWS engineer's communication on the case, now; returns it as DescribeCommunications would."""
        return self.state.add_aws_reply(case_id, body, attachments, submitted_by, status)

    def set_latency(self, seconds: float) -> None:
        self._latency = max(0.0, float(seconds))

    def set_reply_delay(self, seconds: float | None) -> None:
        """None or a negative delay: the engineer never answers on his own."""
        self.engineer.set_delay(seconds)

    def set_trusted_advisor_check_count(self, count: int | None) -> None:
        """Synthesize `count` checks (benchmarks); None restores the realistic built-in set."""
        self.trusted_advisor.set_check_count(count)

    def set_trusted_advisor_check_status(self, check_id: str, status: str) -> None:
        self.trusted_advisor.set_status(check_id, status)

    def add_service(self, code: str, name: str, categories: Iterable[tuple[str, str]]) -> None:
        """One more service (with its categories) in DescribeServices, accepted by CreateCase: codes and
        counts the built-in catalog does not have (a category list over 100, codes over 150 characters)."""
        entry = ServiceEntry(code, name, tuple(categories))
        if not entry.categories:
            raise ValueError("a service needs at least one category")
        with self._lock:
            self.api.extra_services[code] = entry

    def edit_case(self, case_id: str, **fields: Any) -> None:
        """Change what AWS says of a case (subject="", a status it never had…), as legal data can be."""
        with self._lock:
            record = self.state.case(case_id)
            for name, value in fields.items():
                if not hasattr(record, name) or name in ("case_id", "communications"):
                    raise ValueError(f"no such case field: {name}")
                setattr(record, name, value)
            self._persist()

    def set_hostile_prefix(self, prefix: str | None) -> None:
        """Start every free-text member of every answer with `prefix` (None or "": answers as stored)."""
        self._hostile_prefix = prefix or ""

    def set_attachment_set_rate(self, new_sets: int | None) -> None:
        """How many new attachment sets AddAttachmentsToSet creates per window before it answers
        AttachmentLimitExceeded; None restores the generous default."""
        with self._lock:
            self.state.new_sets_per_window = NEW_SETS_PER_WINDOW if new_sets is None else max(0, int(new_sets))

    def expire_attachment_set(self, attachment_set_id: str) -> None:
        self.state.expire_attachment_set(attachment_set_id)

    def advance_clock(self, seconds: float) -> None:
        """Move the sandbox's "now" forward: attachment sets expire, check refreshes complete."""
        self.clock.advance(seconds)

    @property
    def events_queue_url(self) -> str | None:
        """BOT_EVENTS_QUEUE_URL for a bot using this sandbox (with AWS_ENDPOINT_URL_SQS = url)."""
        return f"{self.url}/{ACCOUNT_ID}/{QUEUE_NAME}" if self.sqs is not None else None

    @property
    def latency_seconds(self) -> float:
        return self._latency

    @property
    def reply_delay_seconds(self) -> float | None:
        return self.engineer.delay_seconds

    @property
    def calls(self) -> Counter[str]:
        with self._calls_lock:
            return Counter(self._calls)

    def reset_calls(self) -> None:
        with self._calls_lock:
            self._calls.clear()

    @property
    def cases(self) -> dict[str, CaseRecord]:
        with self._lock:
            return dict(self.state.cases)

    # The protocol ------------------------------------------------------------------------------

    def handle_api(self, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        operation = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else target
        with self._calls_lock:
            self._calls[operation] += 1
        if self._latency > 0:
            time.sleep(self._latency)
        try:
            fault = self.faults.take(operation)
            if fault is not None and fault.late_seconds and target.startswith(TARGET_PREFIX):
                late = threading.Timer(fault.late_seconds, self._call_late, (operation, body))
                late.daemon = True
                late.start()
            if fault is not None and not fault.after_processing:
                _fail(fault)
            if not target.startswith(TARGET_PREFIX):
                raise SupportError("UnknownOperationException", f"Unknown target {target!r}")
            answer = self.api.call(operation, _parse_json(body))
            if self._hostile_prefix:
                answer = disguise(operation, answer, self._hostile_prefix)
            if fault is not None:
                _fail(fault)
            return 200, answer
        except SupportError as error:
            return error.status, error.body()
        except DroppedConnection:
            raise  # the handler closes the connection without an answer
        except Exception:  # the request's boundary: whatever broke, answer like the service does
            logger.exception("sandbox failed on %s", operation)
            return 500, SupportError("InternalServerError").body()

    def _call_late(self, operation: str, body: bytes) -> None:
        try:
            self.api.call(operation, _parse_json(body))
        except Exception:  # noqa: BLE001 - no one waits for this answer: as AWS, it is done or not
            logger.info("sandbox: the late %s failed", operation, exc_info=True)

    def handle_sqs(self, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        with self._calls_lock:
            self._calls["sqs:" + target.removeprefix(sqs.TARGET_PREFIX)] += 1
        return sqs.answer(self.sqs, self.faults.take, target, body, self.url)

    # Persistence -------------------------------------------------------------------------------

    def _changed(self) -> None:
        self._persist()
        if self.case_events is not None:
            self.case_events.observe()

    def _snapshot(self) -> dict[str, Any]:
        return {"support": self.state.to_json(), "trusted_advisor": self.trusted_advisor.to_json()}

    def _persist(self) -> None:
        if self._file is not None:
            with self._lock:
                self._file.save(self._snapshot)

    def _load(self) -> None:
        if self._file is None:
            return
        raw = self._file.load()
        if raw is None:
            return
        self.state.load_json(raw.get("support") or {})
        self.trusted_advisor.load_json(raw.get("trusted_advisor") or {})


def _fail(fault: Fault) -> NoReturn:
    if fault.code == CONNECTION_DROPPED:
        raise DroppedConnection
    raise SupportError(fault.code, fault.message)


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body or b"{}")
    except ValueError as exc:
        raise SupportError("SerializationException", "Request body is not valid JSON.") from exc


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Benchmarks open dozens of connections at once; the default backlog of 5 would refuse some.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], sandbox: SandboxServer):
        self.sandbox = sandbox
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, as botocore pools connections.
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle on, each answer would wait ~40 ms for an ACK.
    disable_nagle_algorithm = True
    server: _HttpServer

    def do_POST(self) -> None:
        body = self._read_body()
        if self.server.sandbox.accounts.answer(self, body):
            return
        if self.path.startswith(CONTROL_PREFIX):
            self._control("POST", body)
            return
        target = self.headers.get("X-Amz-Target", "")
        if target.startswith(sqs.TARGET_PREFIX):
            self._send(*self.server.sandbox.handle_sqs(target, body), sqs.JSON_CONTENT_TYPE)
            return
        try:
            status, payload = self.server.sandbox.handle_api(target, body)
        except DroppedConnection:
            self.close_connection = True
            return
        self._send(status, payload, JSON_CONTENT_TYPE)

    def do_GET(self) -> None:
        self._control("GET", b"")

    def do_DELETE(self) -> None:
        self._control("DELETE", self._read_body())

    def _control(self, method: str, body: bytes) -> None:
        name = self.path.split("?", 1)[0][len(CONTROL_PREFIX) :].strip("/")
        route = CONTROL_ROUTES.get((method, name)) if self.path.startswith(CONTROL_PREFIX) else None
        if route is None:
            self._send(404, {"error": f"no such endpoint: {method} {self.path}"})
            return
        try:
            parsed = json.loads(body or b"{}")
            if not isinstance(parsed, dict):
                raise ControlError("body must be a JSON object")
            self._send(200, route(self.server.sandbox.accounts.for_control(self.path), parsed))
        except SupportError as error:
            self._send(error.status, error.body())
        except (ControlError, ValueError, TypeError) as exc:
            self._send(400, {"error": str(exc)})

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, payload: dict[str, Any], content_type: str = "application/json") -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        logger.debug("sandbox %s - %s", self.address_string(), format % args)
