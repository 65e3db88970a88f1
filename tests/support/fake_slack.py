"""A local fake of the Slack Web API: a real HTTP server on 127.0.0.1 that SLACK_API_URL points at.

It answers the methods the bot uses the way Slack does (shapes, error strings, limits), keeps the
messages of every channel so `conversations.history`/`conversations.replies` return what was posted
(message metadata only with `include_all_metadata`), and records every request it receives:

    fake = FakeSlack().start()
    ... the bot calls fake.api_url + "chat.postMessage" ...
    [call] = fake.wait_for("chat.postMessage", lambda c: c.params["channel"] == "C1")
    call.params["blocks"], call.headers["Authorization"], call.response["ts"]

Besides `/api/<method>` it serves the URLs Slack hands out: response URLs (`fake.response_url()`,
recorded as method "response_url"), private file downloads (`fake.add_file(...)`, recorded as
"file_download"; without the bot token you get Slack's HTML sign-in page with a 200, as the real
thing does) and the upload URLs of `files.getUploadURLExternal` (recorded as "file_upload").

Slack quirks it keeps, because the bot has to cope with them for real: `reactions.add` of a
reaction the bot already added fails with `already_reacted`; `chat.update`/`chat.delete` of an
unknown ts fail with `message_not_found`; `views.update` with a stale `hash` fails with
`hash_conflict`; Block Kit limits are enforced (`invalid_blocks`, `invalid_arguments`); a wrong
or missing token gets `invalid_auth`/`not_authed`; a response URL takes at most 5 posts.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import email.parser
import email.policy
import itertools
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from tests.support.block_kit import sdk_block_problems, sdk_view_problems
from tests.support.http import Headers

TEAM_ID = "T0FAKE"
TEAM_DOMAIN = "fake-workspace"
APP_ID = "A0FAKE"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
BOT_TOKEN = "xoxb-test-token"

# Params that slack_sdk sends as JSON text when it form-encodes (and sometimes inside JSON bodies).
_JSON_PARAMS = ("blocks", "attachments", "view", "metadata", "files", "user_auth_blocks")
_RESPONSE_URL_USES = 5  # Slack: "up to five times within 30 minutes"

_LOGIN_PAGE = b"<!DOCTYPE html><html><head><title>Sign in | Slack</title></head><body>Sign in</body></html>"


@dataclass
class SlackCall:
    """One request the fake received."""

    method: str
    params: dict[str, Any]
    headers: Headers
    body: bytes
    path: str
    http_method: str = "POST"
    status: int = 200
    response: Any = None
    at: float = field(default_factory=time.time)

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")

    @property
    def token(self) -> str | None:
        auth = self.authorization or ""
        if auth.startswith("Bearer "):
            return auth[len("Bearer ") :]
        return self.params.get("token")

    def __repr__(self) -> str:  # short, for assertion messages
        shown = {k: v for k, v in self.params.items() if k not in ("blocks", "view", "attachments")}
        return f"<{self.method} {self.status} {json.dumps(shown, default=str)[:300]}>"


@dataclass
class _Fault:
    error: str
    status: int
    retry_after: float | None
    remaining: int | None  # None: for ever


class SlackApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def _matches(predicate: Callable[[SlackCall], bool] | None, call: SlackCall) -> bool:
    if predicate is None:
        return True
    try:
        return bool(predicate(call))
    except (KeyError, IndexError, TypeError, AttributeError):
        # `c.params["thread_ts"] == ts` on a call without a thread_ts simply does not match.
        return False


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, micros = str(ts).partition(".")
    return int(seconds or 0), int((micros or "0").ljust(6, "0"))


def _text_of(obj: Any) -> str:
    return obj.get("text", "") if isinstance(obj, dict) else ""


def block_problems(blocks: Any, *, max_blocks: int, pointer: str = "/blocks") -> list[str]:
    """Slack's own Block Kit checks (a useful subset), worded like its response_metadata messages."""
    if blocks is None:
        return []
    if not isinstance(blocks, list):
        return [f"[ERROR] must be an array [json-pointer:{pointer}]"]
    problems = []
    if len(blocks) > max_blocks:
        problems.append(f"[ERROR] no more than {max_blocks} items allowed [json-pointer:{pointer}]")
    for i, block in enumerate(blocks):
        here = f"{pointer}/{i}"
        if not isinstance(block, dict) or "type" not in block:
            problems.append(f"[ERROR] missing required field: type [json-pointer:{here}]")
            continue
        kind = block["type"]
        if len(str(block.get("block_id", ""))) > 255:
            problems.append(f"[ERROR] must be less than 256 characters [json-pointer:{here}/block_id]")
        if kind == "header" and len(_text_of(block.get("text"))) > 150:
            problems.append(f"[ERROR] must be less than 151 characters [json-pointer:{here}/text]")
        if kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"[ERROR] must provide text or fields [json-pointer:{here}]")
            if len(_text_of(block.get("text"))) > 3000:
                problems.append(f"[ERROR] must be less than 3001 characters [json-pointer:{here}/text]")
            fields = block.get("fields") or []
            if len(fields) > 10:
                problems.append(f"[ERROR] no more than 10 items allowed [json-pointer:{here}/fields]")
            for j, item in enumerate(fields):
                if len(_text_of(item)) > 2000:
                    problems.append(f"[ERROR] must be less than 2001 characters [json-pointer:{here}/fields/{j}]")
        if kind == "context" and len(block.get("elements") or []) > 10:
            problems.append(f"[ERROR] no more than 10 items allowed [json-pointer:{here}/elements]")
        if kind == "actions":
            elements = block.get("elements") or []
            if len(elements) > 25:
                problems.append(f"[ERROR] no more than 25 items allowed [json-pointer:{here}/elements]")
            for j, element in enumerate(elements):
                if element.get("type") == "button" and len(_text_of(element.get("text"))) > 75:
                    problems.append(f"[ERROR] must be less than 76 characters [json-pointer:{here}/elements/{j}/text]")
        if kind == "input" and len(_text_of(block.get("label"))) > 2000:
            problems.append(f"[ERROR] must be less than 2001 characters [json-pointer:{here}/label]")
        for j, option in enumerate(_options_of(block)):
            if len(_text_of(option.get("text"))) > 75:
                problems.append(f"[ERROR] must be less than 76 characters [json-pointer:{here}/options/{j}/text]")
        for element in _elements_of(block):
            if len(element.get("options") or []) > 100:
                problems.append(f"[ERROR] no more than 100 items allowed [json-pointer:{here}/element/options]")
    # What slack_sdk's own models say, and the rules Slack keeps that they do not (empty texts, option values).
    problems.extend(sdk_block_problems(blocks, pointer))
    return problems


def _elements_of(block: dict) -> list[dict]:
    found = []
    if isinstance(block.get("element"), dict):
        found.append(block["element"])
    if isinstance(block.get("accessory"), dict):
        found.append(block["accessory"])
    found.extend(e for e in block.get("elements") or [] if isinstance(e, dict))
    return found


def _options_of(block: dict) -> list[dict]:
    options = []
    for element in _elements_of(block):
        options.extend(o for o in element.get("options") or [] if isinstance(o, dict))
    return options


def view_problems(view: Any) -> list[str]:
    if not isinstance(view, dict):
        return ["[ERROR] missing required field: view"]
    problems = block_problems(view.get("blocks", []), max_blocks=100, pointer="/view/blocks")
    problems.extend(sdk_view_problems(view))
    if view.get("type") in ("modal", None):
        for name in ("title", "submit", "close"):
            if name in view and len(_text_of(view[name])) > 24:
                problems.append(f"[ERROR] must be less than 25 characters [json-pointer:/view/{name}/text]")
        if "title" not in view:
            problems.append("[ERROR] missing required field: title [json-pointer:/view]")
        if any(b.get("type") == "input" for b in view.get("blocks", []) if isinstance(b, dict)) and (
            "submit" not in view
        ):
            problems.append("[ERROR] submit is required when an input block is present [json-pointer:/view]")
    if len(str(view.get("private_metadata", ""))) > 3000:
        problems.append("[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]")
    if len(str(view.get("callback_id", ""))) > 255:
        problems.append("[ERROR] must be less than 256 characters [json-pointer:/view/callback_id]")
    return problems


class FakeSlack:
    """The fake Web API. `start()` binds a free port; `api_url` is what SLACK_API_URL should be."""

    bot_user_id = BOT_USER_ID
    bot_id = BOT_ID
    team_id = TEAM_ID
    app_id = APP_ID

    def __init__(self, token: str | None = BOT_TOKEN, *, any_response_url: bool = False) -> None:
        """`token`: the only bearer token accepted (None accepts any). `any_response_url`: a response
        URL is valid without response_url() first (a benchmark makes them in another process)."""
        self.token = token
        self.any_response_url = any_response_url
        self._cond = threading.Condition(threading.RLock())
        self._calls: list[SlackCall] = []
        self._faults: dict[str, deque[_Fault]] = defaultdict(deque)
        self._drops: dict[str, int | None] = {}
        self._latency: dict[str | None, float] = {}
        self._holds: dict[str, threading.Event] = {}
        self._ids = itertools.count(1)
        self._last_ts = 0
        self._messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._ephemeral: list[dict[str, Any]] = []
        self._views: dict[str, dict[str, Any]] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, dict[str, Any]] = {}
        self._members: dict[str, list[str]] = {}
        self._files: dict[str, dict[str, Any]] = {}
        self._file_data: dict[str, bytes] = {}
        self._redirects: dict[str, str] = {}
        self._response_urls: dict[str, int] = {}
        # Every Block Kit problem of a message, response-URL body or view the bot sent: (method, problems).
        self.invalid_payloads: list[tuple[str, list[str]]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> FakeSlack:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-slack", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/"

    # ---------------------------------------------------------------- recorded calls

    def calls(self, method: str | None = None, predicate: Callable[[SlackCall], bool] | None = None) -> list[SlackCall]:
        """Recorded calls, oldest first; `method` None means all. A predicate that raises KeyError,
        IndexError, TypeError or AttributeError on a call counts as not matching it."""
        with self._cond:
            return [c for c in self._calls if (method is None or c.method == method) and _matches(predicate, c)]

    def wait_for(
        self,
        method: str,
        predicate: Callable[[SlackCall], bool] | None = None,
        count: int = 1,
        timeout: float = 10,
    ) -> list[SlackCall]:
        """Block until at least `count` calls of `method` match; returns all matching calls so far."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = self.calls(method, predicate)
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"waited {timeout}s for {count} {method} call(s), got {len(found)} matching; "
                        f"all calls: {self._calls!r}"
                    )
                self._cond.wait(min(left, 0.5))

    def assert_no_calls(self, within: float = 0.3, method: str | None = None) -> None:
        """Wait `within` seconds and check nothing (or no `method`) was called."""
        time.sleep(within)
        found = self.calls(method)
        assert not found, f"expected no {method or 'Slack'} calls, got {found!r}"

    def clear(self) -> None:
        """Forget recorded calls (messages, views and files stay)."""
        with self._cond:
            self._calls.clear()

    # ---------------------------------------------------------------- faults and latency

    def fail(
        self,
        method: str,
        error: str = "ratelimited",
        status: int | None = None,
        retry_after: float | None = 1,
        count: int | None = 1,
    ) -> None:
        """Make the next `count` calls of `method` fail (count None: all of them, until `heal`).

        status 429 (the default for "ratelimited") answers with a Retry-After header; 5xx answers
        with that status; 200 (the default for any other error) answers `{"ok": false, "error": ...}`.
        `method` may also be "response_url", "file_download" or "file_upload".
        """
        if status is None:
            status = 429 if error == "ratelimited" else 200
        with self._cond:
            self._faults[method].append(_Fault(error, status, retry_after if status == 429 else None, count))

    def drop_after_acting(self, method: str, count: int | None = 1) -> None:
        """The next `count` calls of `method` (None: all, until `heal`) do their work -- a
        chat.postMessage stores its message -- and then the connection closes without an answer,
        as when a connection drops after Slack acted. Recorded with status 0."""
        with self._cond:
            self._drops[method] = count

    def heal(self, method: str | None = None) -> None:
        with self._cond:
            if method is None:
                self._faults.clear()
                self._drops.clear()
            else:
                self._faults.pop(method, None)
                self._drops.pop(method, None)

    def hold_after_acting(self, method: str) -> threading.Event:
        """Calls of `method` do their work and are recorded (a chat.postMessage's message is in the
        channel, its ts in the call's response), but are answered only once the returned event is set
        (or after 60 s): Slack has acted and its answer is on its way."""
        gate = threading.Event()
        with self._cond:
            self._holds[method] = gate
        return gate

    def set_latency(self, seconds: float, method: str | None = None) -> None:
        """Delay every answer (or only `method`'s) by `seconds`."""
        with self._cond:
            self._latency[method] = seconds

    # ---------------------------------------------------------------- state a test sets up

    def add_user(
        self,
        user_id: str,
        real_name: str | None = None,
        display_name: str | None = None,
        *,
        email: str | None = None,
        is_bot: bool = False,
        tz: str = "Europe/Paris",
        **extra: Any,
    ) -> dict[str, Any]:
        user = self._make_user(user_id, real_name, display_name, email=email, is_bot=is_bot, tz=tz)
        user.update(extra)
        with self._cond:
            self._users[user_id] = user
        return copy.deepcopy(user)

    def add_channel(
        self,
        channel_id: str,
        name: str | None = None,
        *,
        is_private: bool = False,
        is_member: bool = True,
        members: list[str] | None = None,
    ) -> dict[str, Any]:
        channel = self._make_channel(channel_id, name, is_private=is_private, is_member=is_member)
        with self._cond:
            self._channels[channel_id] = channel
            if members is not None:
                self._members[channel_id] = list(members)
        return copy.deepcopy(channel)

    def set_members(self, channel_id: str, members: list[str]) -> None:
        with self._cond:
            self._members[channel_id] = list(members)

    def add_file(
        self, name: str, data: bytes, mimetype: str = "text/plain", *, user: str = "U1", title: str | None = None
    ) -> dict[str, Any]:
        """A file a person shared: put it in a message event's `files`; the bot downloads it from here."""
        with self._cond:
            file = self._make_file(self._new_id("F"), name, data, mimetype, user=user, title=title)
            return copy.deepcopy(file)

    def redirect_download(self, file_id: str, location: str) -> None:
        """Answer downloads of the file with a 302 to `location` (after the token check, as a CDN hand-off)."""
        with self._cond:
            self._redirects[file_id] = location

    def add_message(
        self,
        channel: str,
        text: str = "",
        *,
        user: str | None = "U1",
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
        bot_id: str | None = None,
        subtype: str | None = None,
        ts: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Record a message as if someone posted it; returns it shaped as a `message` event."""
        with self._cond:
            message: dict[str, Any] = {"type": "message", "text": text, "ts": ts or self._next_ts()}
            if user is not None:
                message["user"] = user
            if bot_id is not None:
                message["bot_id"] = bot_id
            if subtype is not None:
                message["subtype"] = subtype
            if files:
                message["files"] = copy.deepcopy(files)
                message["upload"] = False
            message.update(extra)
            self._store_message(channel, message, thread_ts)
            event = copy.deepcopy(message)
        event.update(
            channel=channel,
            event_ts=event["ts"],
            channel_type="im" if channel.startswith("D") else ("group" if channel.startswith("G") else "channel"),
        )
        event.pop("reply_count", None)
        return event

    # ---------------------------------------------------------------- state a test reads

    def response_url(self) -> str:
        """A fresh response URL; POSTs to it are recorded as method "response_url" (params: JSON body)."""
        with self._cond:
            token = self._new_id("R")
            self._response_urls[token] = 0
        return f"{self.base_url}/commands/{TEAM_ID}/{token}"

    def responses(self, url: str | None = None) -> list[dict[str, Any]]:
        """JSON bodies posted to response URLs (to `url` only, when given), oldest first."""
        path = urlsplit(url).path if url else None
        return [c.params for c in self.calls("response_url") if path is None or c.path == path]

    def messages(self, channel: str, thread_ts: str | None = None) -> list[dict[str, Any]]:
        """Messages in a channel (or one thread, parent first), oldest first, metadata included."""
        with self._cond:
            found = self._messages.get(channel, [])
            if thread_ts is not None:
                found = [m for m in found if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts]
            return copy.deepcopy(found)

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        with self._cond:
            found = self._find_message(channel, ts)
            return copy.deepcopy(found) if found else None

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [
                copy.deepcopy(m)
                for m in self._ephemeral
                if (channel is None or m["channel"] == channel) and (user is None or m["user"] == user)
            ]

    def view(self, view_id: str) -> dict[str, Any] | None:
        with self._cond:
            found = self._views.get(view_id)
            return copy.deepcopy(found) if found else None

    def views(self) -> list[dict[str, Any]]:
        with self._cond:
            return copy.deepcopy(list(self._views.values()))

    def file(self, file_id: str) -> dict[str, Any] | None:
        with self._cond:
            found = self._files.get(file_id)
            return copy.deepcopy(found) if found else None

    def file_bytes(self, file_id: str) -> bytes | None:
        with self._cond:
            return self._file_data.get(file_id)

    # ---------------------------------------------------------------- HTTP plumbing

    def _record(self, call: SlackCall) -> None:
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()

    def _take_fault(self, method: str) -> _Fault | None:
        with self._cond:
            queue = self._faults.get(method)
            if not queue:
                return None
            fault = queue[0]
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    queue.popleft()
            return fault

    def _take_drop(self, method: str) -> bool:
        with self._cond:
            if method not in self._drops:
                return False
            remaining = self._drops[method]
            if remaining is not None:
                if remaining <= 1:
                    del self._drops[method]
                else:
                    self._drops[method] = remaining - 1
            return True

    def _latency_for(self, method: str) -> float:
        with self._cond:
            return self._latency.get(method, self._latency.get(None, 0.0))

    def handle(self, http_method: str, path: str, query: str, headers: Headers, body: bytes) -> tuple:
        """One request -> (status, headers, body bytes); also records it. Status None: close the
        connection without answering (see drop_after_acting)."""
        if path.startswith("/api/"):
            method = path[len("/api/") :]
            params = dict(parse_qsl(query, keep_blank_values=True))
            params.update(_parse_params(headers.get("Content-Type", ""), body))
        elif path.startswith("/commands/"):
            method, params = "response_url", _parse_json(body)
        elif path.startswith("/files-pri/"):
            method, params = "file_download", {"path": path}
        elif path.startswith("/upload/v1/"):
            method, params = "file_upload", {"file_id": path.rsplit("/", 1)[-1], "size": len(body)}
        else:
            method, params = "unknown_path", {"path": path}
        call = SlackCall(method=method, params=params, headers=headers, body=body, path=path, http_method=http_method)

        delay = self._latency_for(method)
        if delay:
            time.sleep(delay)

        fault = self._take_fault(method)
        if fault is not None:
            status, response_headers, payload = fault.status, {}, {"ok": False, "error": fault.error}
            if fault.retry_after is not None:
                response_headers["Retry-After"] = str(int(fault.retry_after))
        else:
            status, response_headers, payload = self._answer(call)
            if self._take_drop(method):
                call.status, call.response = 0, payload
                self._record(call)
                return None, {}, b""
        call.status, call.response = status, payload
        self._record(call)
        with self._cond:
            hold = self._holds.get(method)
        if hold is not None:
            hold.wait(60)
        if isinstance(payload, bytes):
            return status, response_headers, payload
        response_headers.setdefault("Content-Type", "application/json; charset=utf-8")
        return status, response_headers, json.dumps(payload).encode()

    def _answer(self, call: SlackCall) -> tuple[int, dict[str, str], Any]:
        if call.method == "response_url":
            return self._answer_response_url(call)
        if call.method == "file_download":
            return self._answer_download(call)
        if call.method == "file_upload":
            return self._answer_upload(call)
        if call.method == "unknown_path":
            return 404, {"Content-Type": "text/plain"}, b"Not Found"
        handler = getattr(self, "_api_" + call.method.replace(".", "_"), None)
        if handler is None:
            return 200, {}, {"ok": False, "error": "unknown_method"}
        auth_error = self._auth_error(call)
        if auth_error:
            return 200, {}, {"ok": False, "error": auth_error}
        try:
            with self._cond:
                result = handler(call.params)
        except SlackApiError as error:
            return 200, {}, dict({"ok": False, "error": error.error}, **error.extra)
        return 200, {}, dict({"ok": True}, **result)

    def _auth_error(self, call: SlackCall) -> str | None:
        token = call.token
        if not token:
            return "not_authed"
        if self.token is not None and token != self.token:
            return "invalid_auth"
        return None

    def _answer_response_url(self, call: SlackCall) -> tuple[int, dict[str, str], Any]:
        token = call.path.rstrip("/").rsplit("/", 1)[-1]
        with self._cond:
            if self.any_response_url:
                self._response_urls.setdefault(token, 0)
            if token not in self._response_urls:
                return 404, {"Content-Type": "text/plain"}, b"invalid_token"
            self._response_urls[token] += 1
            if self._response_urls[token] > _RESPONSE_URL_USES:
                return 404, {"Content-Type": "text/plain"}, b"used_url"
        body = call.params
        if not isinstance(body, dict):
            return 400, {"Content-Type": "text/plain"}, b"invalid_payload"
        if not (body.get("text") or body.get("blocks") or body.get("attachments") or body.get("delete_original")):
            return 400, {"Content-Type": "text/plain"}, b"no_text"
        problems = block_problems(body.get("blocks"), max_blocks=50)
        if problems:
            self.invalid_payloads.append(("response_url", problems))
            return 400, {"Content-Type": "text/plain"}, b"invalid_blocks"
        return 200, {}, {"ok": True}

    def _answer_download(self, call: SlackCall) -> tuple[int, dict[str, str], Any]:
        # /files-pri/T0FAKE-F123/name or /files-pri/T0FAKE-F123/download/name
        parts = call.path.split("/")
        file_id = parts[2].split("-", 1)[-1] if len(parts) > 2 else ""
        call.params["file_id"] = file_id
        if self._auth_error(call):
            # Slack answers a download without a valid token with its sign-in page, and a 200.
            return 200, {"Content-Type": "text/html; charset=utf-8"}, _LOGIN_PAGE
        with self._cond:
            file = self._files.get(file_id)
            data = self._file_data.get(file_id)
            location = self._redirects.get(file_id)
        if location is not None:
            return 302, {"Location": location, "Content-Type": "text/plain"}, b"Found"
        if file is None or data is None:
            return 404, {"Content-Type": "text/plain"}, b"file_not_found"
        return 200, {"Content-Type": file["mimetype"]}, data

    def _answer_upload(self, call: SlackCall) -> tuple[int, dict[str, str], Any]:
        file_id = call.params["file_id"]
        with self._cond:
            pending = self._files.get(file_id)
            if pending is None:
                return 404, {"Content-Type": "text/plain"}, b"file_not_found"
            self._file_data[file_id] = call.body
            pending["size"] = len(call.body)
        return 200, {"Content-Type": "text/plain"}, f"OK - {len(call.body)}".encode()

    # ---------------------------------------------------------------- ids, messages

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08X}"

    def _next_ts(self) -> str:
        # Real epoch time like Slack's, strictly increasing so every ts is unique.
        micros = max(int(time.time() * 1_000_000), self._last_ts + 100)
        self._last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _find_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        for message in self._messages.get(channel, []):
            if message["ts"] == ts:
                return message
        return None

    def _store_message(self, channel: str, message: dict[str, Any], thread_ts: str | None) -> None:
        message.setdefault("team", TEAM_ID)
        if thread_ts and thread_ts != message["ts"]:
            message["thread_ts"] = thread_ts
            parent = self._find_message(channel, thread_ts)
            if parent is not None:
                message["parent_user_id"] = parent.get("user", "")
                parent["thread_ts"] = parent["ts"]
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                users = parent.setdefault("reply_users", [])
                if message.get("user") and message["user"] not in users:
                    users.append(message["user"])
                parent["reply_users_count"] = len(users)
                parent["latest_reply"] = message["ts"]
        self._messages[channel].append(message)
        self._messages[channel].sort(key=lambda m: _ts_key(m["ts"]))

    def _bot_message(self, params: dict[str, Any], ts: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            # An app's bot user posts without a subtype (that is for legacy bots): bot_id tells.
            "type": "message",
            "text": params.get("text") or "",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "bot_profile": {"id": BOT_ID, "app_id": APP_ID, "name": "AWS Support", "team_id": TEAM_ID},
            "ts": ts,
        }
        for key in ("blocks", "attachments", "metadata"):
            if params.get(key) is not None:
                message[key] = copy.deepcopy(params[key])
        return message

    def _check_message_content(self, params: dict[str, Any], *, required: bool = True) -> None:
        if required and not (params.get("text") or params.get("blocks") or params.get("attachments")):
            raise SlackApiError("no_text")
        if len(str(params.get("text") or "")) > 40000:
            raise SlackApiError("msg_too_long")
        problems = block_problems(params.get("blocks"), max_blocks=50)
        if problems:
            self.invalid_payloads.append(("message", problems))
            raise SlackApiError("invalid_blocks", response_metadata={"messages": problems})
        metadata = params.get("metadata")
        if metadata is not None and not (
            isinstance(metadata, dict)
            and isinstance(metadata.get("event_type"), str)
            and isinstance(metadata.get("event_payload"), dict)
        ):
            raise SlackApiError("invalid_metadata_format")

    @staticmethod
    def _public(message: dict[str, Any], include_metadata: bool) -> dict[str, Any]:
        shown = copy.deepcopy(message)
        if not include_metadata:
            shown.pop("metadata", None)
        return shown

    @staticmethod
    def _require(params: dict[str, Any], *names: str) -> None:
        for name in names:
            if not params.get(name):
                raise SlackApiError("invalid_arguments", response_metadata={"messages": [f"missing {name}"]})

    @staticmethod
    def _page(items: list[Any], params: dict[str, Any], default_limit: int) -> tuple[list[Any], dict[str, Any]]:
        try:
            start = int(base64.b64decode(params.get("cursor") or "MA==").decode())
        except ValueError as exc:
            raise SlackApiError("invalid_cursor") from exc
        limit = int(params.get("limit") or default_limit)
        page = items[start : start + limit]
        more = start + limit < len(items)
        cursor = base64.b64encode(str(start + limit).encode()).decode() if more else ""
        return page, {"has_more": more, "response_metadata": {"next_cursor": cursor}}

    @staticmethod
    def _in_window(ts: str, params: dict[str, Any]) -> bool:
        inclusive = _truthy(params.get("inclusive"))
        key = _ts_key(ts)
        if params.get("oldest"):
            oldest = _ts_key(params["oldest"])
            if key < oldest or (key == oldest and not inclusive):
                return False
        if params.get("latest"):
            latest = _ts_key(params["latest"])
            if key > latest or (key == latest and not inclusive):
                return False
        return True

    def _make_user(
        self,
        user_id: str,
        real_name: str | None = None,
        display_name: str | None = None,
        *,
        email: str | None = None,
        is_bot: bool = False,
        tz: str = "Europe/Paris",
    ) -> dict[str, Any]:
        real_name = real_name or f"Test User {user_id}"
        display_name = display_name if display_name is not None else real_name.lower().replace(" ", ".")
        return {
            "id": user_id,
            "team_id": TEAM_ID,
            "name": display_name or user_id.lower(),
            "deleted": False,
            "real_name": real_name,
            "tz": tz,
            "tz_label": tz,
            "tz_offset": 3600,
            "is_admin": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": 1700000000,
            "profile": {
                "real_name": real_name,
                "real_name_normalized": real_name,
                "display_name": display_name,
                "display_name_normalized": display_name,
                "email": email or f"{user_id.lower()}@example.com",
                "image_48": f"https://avatars.example.com/{user_id}_48.png",
                "team": TEAM_ID,
            },
        }

    def _make_channel(
        self, channel_id: str, name: str | None = None, *, is_private: bool = False, is_member: bool = True
    ) -> dict[str, Any]:
        return {
            "id": channel_id,
            "name": name or f"channel-{channel_id.lower()}",
            "is_channel": not channel_id.startswith("D"),
            "is_group": False,
            "is_im": channel_id.startswith("D"),
            "is_private": is_private,
            "is_archived": False,
            "is_member": is_member,
            "created": 1700000000,
            "context_team_id": TEAM_ID,
        }

    def _make_file(
        self, file_id: str, name: str, data: bytes | None, mimetype: str, *, user: str, title: str | None
    ) -> dict[str, Any]:
        base = f"{self.base_url}/files-pri/{TEAM_ID}-{file_id}"
        file = {
            "id": file_id,
            "created": int(time.time()),
            "timestamp": int(time.time()),
            "name": name,
            "title": title or name,
            "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1].lower() if "." in name else "binary",
            "pretty_type": mimetype,
            "user": user,
            "user_team": TEAM_ID,
            "mode": "hosted",
            "is_external": False,
            "is_public": True,
            "size": len(data) if data is not None else 0,
            "url_private": f"{base}/{quote(name)}",
            "url_private_download": f"{base}/download/{quote(name)}",
            "permalink": f"https://{TEAM_DOMAIN}.slack.com/files/{user}/{file_id}/{quote(name)}",
        }
        self._files[file_id] = file
        if data is not None:
            self._file_data[file_id] = bytes(data)
        return file

    # ---------------------------------------------------------------- Web API methods
    # Each runs under the fake's lock and returns the fields beside "ok": true.

    def _api_api_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"args": params}

    def _api_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": "Fake Workspace",
            "user": "aws-support",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _api_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require(params, "channel")
        self._check_message_content(params)
        channel = params["channel"]
        if channel in self._channels and not self._channels[channel]["is_member"]:
            raise SlackApiError("not_in_channel")
        message = self._bot_message(params, self._next_ts())
        self._store_message(channel, message, params.get("thread_ts") or None)
        if params.get("thread_ts") and _truthy(params.get("reply_broadcast")):
            message["subtype"] = "thread_broadcast"
        return {"channel": channel, "ts": message["ts"], "message": copy.deepcopy(message)}

    def _api_chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require(params, "channel", "user")
        self._check_message_content(params)
        ts = self._next_ts()
        self._ephemeral.append(
            dict(self._bot_message(params, ts), channel=params["channel"], user=params["user"])
            | ({"thread_ts": params["thread_ts"]} if params.get("thread_ts") else {})
        )
        return {"message_ts": ts}

    def _api_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require(params, "channel", "ts")
        message = self._find_message(params["channel"], params["ts"])
        if message is None:
            raise SlackApiError("message_not_found")
        if message.get("user") != BOT_USER_ID:
            raise SlackApiError("cant_update_message")
        self._check_message_content(params, required=False)
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in params and params[key] is not None:
                message[key] = copy.deepcopy(params[key])
        message["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        return {
            "channel": params["channel"],
            "ts": message["ts"],
            "text": message.get("text", ""),
            "message": copy.deepcopy(message),
        }

    def _api_chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require(params, "channel", "ts")
        message = self._find_message(params["channel"], params["ts"])
        if message is None:
            raise SlackApiError("message_not_found")
        if message.get("user") != BOT_USER_ID:
            raise SlackApiError("cant_delete_message")
        self._messages[params["channel"]].remove(message)
        return {"channel": params["channel"], "ts": params["ts"]}

    def _api_chat_getPermalink(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require(params, "channel", "message_ts")
        channel, ts = params["channel"], params["message_ts"]
        message = self._find_message(channel, ts)
        if message is None:
            raise SlackApiError("message_not_found")
        link = f"https://{TEAM_DOMAIN}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        if message.get("thread_ts") and message["thread_ts"] != ts:
            link += f"?thread_ts={message['thread_ts']}&cid={channel}"
        return {"channel": channel, "permalink": link}

    def _api_reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require(params, "channel", "timestamp", "name")
        message = self._find_message(params["channel"], params["timestamp"])
        if message is None:
            raise SlackApiError("message_not_found")
        reactions = message.setdefault("reactions", [])
        for reaction in reactions:
            if reaction["name"] == params["name"]:
                if BOT_USER_ID in reaction["users"]:
                    raise SlackApiError("already_reacted")
                reaction["users"].append(BOT_USER_ID)
                reaction["count"] += 1
                return {}
        reactions.append({"name": params["name"], "users": [BOT_USER_ID], "count": 1})
        return {}

    def _api_reactions_remove(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require(params, "name")
        message = self._find_message(params.get("channel", ""), params.get("timestamp", ""))
        if message is None:
            raise SlackApiError("message_not_found")
        for reaction in message.get("reactions", []):
            if reaction["name"] == params["name"] and BOT_USER_ID in reaction["users"]:
                reaction["users"].remove(BOT_USER_ID)
                reaction["count"] -= 1
                if not reaction["count"]:
                    message["reactions"].remove(reaction)
                return {}
        raise SlackApiError("no_reaction")

    def _open_view(self, view: Any, previous: dict[str, Any] | None = None) -> dict[str, Any]:
        problems = view_problems(view)
        if problems:
            self.invalid_payloads.append(("view", problems))
            raise SlackApiError("invalid_arguments", response_metadata={"messages": problems})
        view_id = self._new_id("V")
        stored = {
            "id": view_id,
            "team_id": TEAM_ID,
            "type": "modal",
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            "clear_on_close": False,
            "notify_on_close": False,
            **copy.deepcopy(view),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{self._new_id('h')}",
            "root_view_id": previous["root_view_id"] if previous else view_id,
            "previous_view_id": previous["id"] if previous else None,
            "app_id": APP_ID,
            "bot_id": BOT_ID,
        }
        self._views[view_id] = stored
        return {"view": copy.deepcopy(stored)}

    def _api_views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require(params, "trigger_id")
        return self._open_view(params.get("view"))

    def _api_views_push(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require(params, "trigger_id")
        latest = next(reversed(self._views.values()), None)
        return self._open_view(params.get("view"), previous=latest)

    def _api_views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        view = params.get("view")
        problems = view_problems(view)
        if problems:
            self.invalid_payloads.append(("view", problems))
            raise SlackApiError("invalid_arguments", response_metadata={"messages": problems})
        target = None
        if params.get("view_id"):
            target = self._views.get(params["view_id"])
        elif params.get("external_id"):
            target = next((v for v in self._views.values() if v.get("external_id") == params["external_id"]), None)
        else:
            raise SlackApiError("invalid_arguments", response_metadata={"messages": ["missing view_id"]})
        if target is None:
            raise SlackApiError("not_found")
        if params.get("hash") and params["hash"] != target["hash"]:
            raise SlackApiError("hash_conflict")
        kept = {k: target[k] for k in ("id", "team_id", "root_view_id", "previous_view_id", "app_id", "bot_id")}
        target.clear()
        target.update({"private_metadata": "", "callback_id": "", "external_id": "", **copy.deepcopy(view), **kept})
        target["state"] = {"values": {}}
        target["hash"] = f"{int(time.time())}.{self._new_id('h')}"
        return {"view": copy.deepcopy(target)}

    def _api_views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require(params, "user_id")
        return self._open_view(params.get("view"))

    def _api_users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require(params, "user")
        user_id = params["user"]
        if user_id not in self._users:
            if user_id == BOT_USER_ID:
                self._users[user_id] = self._make_user(user_id, "AWS Support", "aws-support", is_bot=True)
            else:
                self._users[user_id] = self._make_user(user_id)
        return {"user": copy.deepcopy(self._users[user_id])}

    def _channel(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require(params, "channel")
        channel_id = params["channel"]
        if channel_id not in self._channels:
            self._channels[channel_id] = self._make_channel(channel_id)
        return self._channels[channel_id]

    def _api_conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = copy.deepcopy(self._channel(params))
        if _truthy(params.get("include_num_members")):
            channel["num_members"] = len(self._members_of(channel["id"]))
        return {"channel": channel}

    def _members_of(self, channel_id: str) -> list[str]:
        return self._members.get(channel_id, [BOT_USER_ID, "U1", "UADMIN"])

    def _api_conversations_members(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        page, meta = self._page(self._members_of(channel["id"]), params, 100)
        meta.pop("has_more")
        return {"members": list(page), **meta}

    def _api_conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require(params, "channel")
        with_metadata = _truthy(params.get("include_all_metadata"))
        top = [
            m
            for m in reversed(self._messages.get(params["channel"], []))
            if (not m.get("thread_ts") or m["thread_ts"] == m["ts"] or m.get("subtype") == "thread_broadcast")
            and self._in_window(m["ts"], params)
        ]
        page, meta = self._page(top, params, 100)
        return {"messages": [self._public(m, with_metadata) for m in page], **meta}

    def _api_conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require(params, "channel", "ts")
        channel, ts = params["channel"], params["ts"]
        parent = self._find_message(channel, ts)
        if parent is None:
            raise SlackApiError("thread_not_found")
        root = parent.get("thread_ts") or ts
        with_metadata = _truthy(params.get("include_all_metadata"))
        thread = [
            m
            for m in self._messages.get(channel, [])
            if m["ts"] == root or (m.get("thread_ts") == root and self._in_window(m["ts"], params))
        ]
        page, meta = self._page(thread, params, 1000)
        return {"messages": [self._public(m, with_metadata) for m in page], **meta}

    def _api_files_info(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require(params, "file")
        file = self._files.get(params["file"])
        if file is None:
            raise SlackApiError("file_not_found")
        return {"file": copy.deepcopy(file), "comments": [], "response_metadata": {"next_cursor": ""}}

    def _api_files_getUploadURLExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require(params, "filename", "length")
        file_id = self._new_id("F")
        self._make_file(file_id, params["filename"], None, "application/octet-stream", user=BOT_USER_ID, title=None)
        return {"upload_url": f"{self.base_url}/upload/v1/{file_id}", "file_id": file_id}

    def _api_files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        entries = params.get("files")
        if not isinstance(entries, list) or not entries:
            raise SlackApiError("invalid_arguments", response_metadata={"messages": ["missing files"]})
        done = []
        for entry in entries:
            file = self._files.get(entry.get("id", ""))
            if file is None or entry["id"] not in self._file_data:
                raise SlackApiError("file_not_found")
            if entry.get("title"):
                file["title"] = entry["title"]
            done.append(file)
        channel = params.get("channel_id") or (params.get("channels") or "").split(",")[0]
        if channel:
            message = self._bot_message({"text": params.get("initial_comment") or ""}, self._next_ts())
            message["files"] = copy.deepcopy(done)
            message["upload"] = True
            self._store_message(channel, message, params.get("thread_ts") or None)
            for file in done:
                file.setdefault("shares", {}).setdefault("public", {})[channel] = [{"ts": message["ts"]}]
        return {"files": copy.deepcopy(done)}


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a burst of after-ack answers (20 `show`s finishing
    # at once) overflowed it and the kernel reset connections, answers the bot had sent, lost.
    # Slack's servers take a burst; so does waitress (backlog 1024).
    request_queue_size = 1024


class _Handler(BaseHTTPRequestHandler):
    owner: FakeSlack
    server_version = "FakeSlack/1.0"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        status, headers, payload = self.owner.handle(
            self.command, unquote(url.path), url.query, Headers(self.headers.items()), body
        )
        if status is None:
            self.close_connection = True
            return
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8") or "null")
    except ValueError:
        return {"_raw": body.decode("utf-8", errors="replace")}


def _parse_params(content_type: str, body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    if "json" in content_type:
        parsed = _parse_json(body)
        params = parsed if isinstance(parsed, dict) else {"_json": parsed}
    elif content_type.startswith("multipart/form-data"):
        params = _parse_multipart(content_type, body)
    else:
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    for key in _JSON_PARAMS:
        value = params.get(key)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    params: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        params[name] = payload if part.get_filename() else payload.decode("utf-8", errors="replace")
    return params
