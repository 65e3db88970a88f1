"""The HTTP surface: Slack's signature is required on /slack/events, /healthz reports, the rest is 404."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest

from bot.store.claims import RememberedClaims, SharedClaims
from bot.store.tables import Store as SqliteStore
from bot.web import MAX_BODY_BYTES
from tests.cases.helpers import communications, link_case, open_case_at_aws
from tests.support.harness import SIGNING_SECRET, BotHarness
from tests.support.slack_requests import message_event, new_event_id, sign


def _assert_nothing_happened(bot: BotHarness) -> None:
    bot.slack.assert_no_calls(within=0.2)
    assert sum(bot.sandbox.calls.values()) == 0, bot.sandbox.calls


@pytest.mark.parametrize("signing", ["unsigned", "wrong", "stale"])
def test_a_slash_command_without_a_valid_signature_is_refused(bot: BotHarness, signing: str) -> None:
    response = bot.requests.slash_command("list all", user_id="UADMIN", signing=signing)

    assert response.status == 401
    _assert_nothing_happened(bot)


@pytest.mark.parametrize("signing", ["unsigned", "wrong", "stale"])
def test_an_event_without_a_valid_signature_is_refused(bot: BotHarness, signing: str) -> None:
    event = message_event("C1", "please add this to the case", user="U1", thread_ts="1700000000.000100")

    response = bot.requests.event_callback(event, signing=signing)

    assert response.status == 401
    _assert_nothing_happened(bot)


@pytest.mark.parametrize("signing", ["unsigned", "wrong", "stale"])
def test_an_interaction_without_a_valid_signature_is_refused(bot: BotHarness, signing: str) -> None:
    response = bot.requests.block_actions(
        {"type": "button", "action_id": "case_resolve", "block_id": "b", "value": "case-1", "action_ts": "1"},
        signing=signing,
    )

    assert response.status == 401
    _assert_nothing_happened(bot)


def test_a_body_altered_after_signing_is_refused(bot: BotHarness) -> None:
    body = b"command=%2Faws-support&text=help&user_id=U1&channel_id=C1&response_url=x"
    timestamp = str(int(time.time()))
    headers = {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": sign(bot.requests.signing_secret, timestamp, body),
    }
    tampered = body.replace(b"text=help", b"text=list+all")

    response = bot.requests.post(tampered, "application/x-www-form-urlencoded", signing="unsigned", headers=headers)

    assert response.status == 401
    _assert_nothing_happened(bot)


def test_healthz_reports_the_store_and_workers(bot: BotHarness) -> None:
    response = bot.health()

    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json["ok"] is True
    assert response.json["store"] is True
    assert response.json["workers"] == {}


class _DeadWorker:
    name = "poller"

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def is_alive(self) -> bool:
        return False

    def health(self) -> dict:
        return {"last_poll": None}


def test_healthz_is_503_when_a_worker_died(bot: BotHarness) -> None:
    bot.services.workers.append(_DeadWorker())

    response = bot.health()

    assert response.status == 503
    assert response.json["ok"] is False
    assert response.json["workers"]["poller"]["alive"] is False


def test_healthz_with_running_workers(bot_with_workers: BotHarness) -> None:
    response = bot_with_workers.health()

    assert response.status == 200, response.body
    assert response.json["workers"], "the poller and scheduler report themselves"
    assert all(w["alive"] for w in response.json["workers"].values())


@pytest.mark.parametrize("path", ["/", "/nope", "/slack/event", "/healthz/extra"])
def test_an_unknown_path_is_404(bot: BotHarness, path: str) -> None:
    assert bot.get(path).status == 404


def test_an_unknown_subcommand_is_answered_in_the_ack(bot: BotHarness) -> None:
    response = bot.command("bogus")

    assert response.status == 200
    assert response.json["response_type"] == "ephemeral"
    assert "`bogus` is not an `/aws-support` command" in response.json["text"]
    assert "/aws-support help" in response.json["text"]
    assert sum(bot.sandbox.calls.values()) == 0


def test_a_signed_command_is_acked_and_answered_on_its_response_url(bot: BotHarness) -> None:
    response = bot.command("list")

    assert response.status == 200
    assert response.text == ""
    answer = bot.wait_for_response()
    assert answer["response_type"] == "ephemeral"
    # Bolt looked the bot up once (auth.test) with the bot token, on the fake Slack.
    [auth] = bot.slack.calls("auth.test")
    assert auth.headers["Authorization"] == "Bearer xoxb-test-token"


@pytest.mark.parametrize("text", ["", "help", "  HELP  "])
def test_help_is_answered_in_the_ack_itself(bot: BotHarness, text: str) -> None:
    response = bot.command(text)

    assert response.status == 200
    assert response.json["response_type"] == "ephemeral"
    assert "/aws-support create" in json.dumps(response.json["blocks"])
    assert response.json["text"], "a fallback text for notifications"
    bot.slack.assert_no_calls(within=0.3, method="response_url")
    assert sum(bot.sandbox.calls.values()) == 0


# Verified before read or parsed (defect 7) --------------------------------------------------------


def _raw_post(bot: BotHarness, head: bytes, body: bytes = b"") -> bytes:
    """Send bytes as they are on a fresh connection; what came back before the server closed or 5 s passed.
    The server may answer and close before reading all of `body`: that is no error here."""
    port = int(bot.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        with contextlib.suppress(ConnectionError):
            conn.sendall(head + body)
        received = b""
        with contextlib.suppress(TimeoutError, ConnectionError):
            while chunk := conn.recv(65536):
                received += chunk
                if b"\r\n\r\n" in received:
                    break
    return received


def _status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/"), answer[:200]
    return int(answer.split(b" ", 2)[1])


def test_a_body_over_the_cap_is_refused_by_its_content_length_before_it_is_read(bot: BotHarness) -> None:
    head = (
        b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000000\r\n\r\n"
    )

    answer = _raw_post(bot, head, b"{")  # the rest of the 100 MB never comes

    assert _status(answer) == 413
    _assert_nothing_happened(bot)


@pytest.mark.parametrize("signing", ["unsigned", "valid"])
def test_a_body_over_the_cap_is_refused_with_413(bot: BotHarness, signing: str) -> None:
    body = b"payload=" + b"x" * MAX_BODY_BYTES
    timestamp = str(int(time.time()))
    signed = f"X-Slack-Request-Timestamp: {timestamp}\r\nX-Slack-Signature: {sign(SIGNING_SECRET, timestamp, body)}\r\n"
    head = (
        b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        + (signed.encode() if signing == "valid" else b"")
        + b"Content-Length: %d\r\n\r\n" % len(body)
    )

    assert _status(_raw_post(bot, head, body)) == 413
    _assert_nothing_happened(bot)


def test_a_body_at_the_cap_is_read(bot: BotHarness) -> None:
    padding = MAX_BODY_BYTES - len(b"command=%2Faws-support&text=help&pad=")
    response = bot.requests.post(
        b"command=%2Faws-support&text=help&pad=" + b"x" * padding, "application/x-www-form-urlencoded"
    )

    assert response.status == 200


def test_a_chunked_body_over_the_cap_is_refused(bot: BotHarness) -> None:
    head = (
        b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * 65536
    body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * (MAX_BODY_BYTES // len(chunk) + 2) + b"0\r\n\r\n"

    answer = _raw_post(bot, head, body)

    assert _status(answer) == 413
    _assert_nothing_happened(bot)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"type": "event_callback", "event": '),
        ("application/json", b"\xff\xfe not utf-8"),
        ("application/x-www-form-urlencoded", b"payload=%7Bnot-json"),
        ("application/x-www-form-urlencoded", b"\xff=\xfe"),
        ("text/plain", b"[1, 2"),
    ],
)
def test_a_malformed_unsigned_body_is_refused_with_401_not_500(bot: BotHarness, content_type: str, body: bytes) -> None:
    response = bot.requests.post(body, content_type, signing="unsigned")

    assert response.status == 401
    _assert_nothing_happened(bot)


@pytest.mark.parametrize("timestamp", ["soon", "", "1e9", "-"])
def test_a_malformed_signature_timestamp_is_refused_with_401(bot: BotHarness, timestamp: str) -> None:
    body = b"command=%2Faws-support&text=help"
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": "v0=" + "0" * 64}

    response = bot.requests.post(body, "application/x-www-form-urlencoded", signing="unsigned", headers=headers)

    assert response.status == 401
    _assert_nothing_happened(bot)


# Replays (defect 11) -------------------------------------------------------------------------------


def _signed_form(fields: dict[str, str], timestamp: str | None = None) -> tuple[bytes, dict[str, str]]:
    body = urlencode(fields).encode()
    timestamp = timestamp or str(int(time.time()))
    return body, {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": sign(SIGNING_SECRET, timestamp, body)}


def _command_fields(bot: BotHarness, text: str) -> dict[str, str]:
    return {
        "command": "/aws-support",
        "text": text,
        "team_id": "T0FAKE",
        "user_id": "U1",
        "channel_id": "C1",
        "response_url": bot.slack.response_url(),
        "trigger_id": "1.2.replayed",
    }


FORM = "application/x-www-form-urlencoded"


def test_a_replayed_slash_command_is_acked_empty_and_causes_nothing(bot: BotHarness) -> None:
    case = open_case_at_aws(bot)
    fields = _command_fields(bot, f"show {case.display_id}")
    body, headers = _signed_form(fields)
    first = bot.requests.post(body, FORM, signing="unsigned", headers=headers)
    assert first.status == 200
    bot.wait_for_response(response_url=fields["response_url"])
    bot.slack.clear()
    aws_calls = bot.sandbox.calls.total()

    replay = bot.requests.post(body, FORM, signing="unsigned", headers=headers)

    assert replay.status == 200
    assert replay.text == ""
    bot.slack.assert_no_calls(within=0.5)
    assert bot.sandbox.calls.total() == aws_calls


def test_a_replay_with_a_forged_retry_header_is_still_refused(bot: BotHarness) -> None:
    body, headers = _signed_form(_command_fields(bot, "bogus"))
    assert "bogus" in bot.requests.post(body, FORM, signing="unsigned", headers=headers).text

    replay = bot.requests.post(body, FORM, signing="unsigned", headers=dict(headers, **{"X-Slack-Retry-Num": "1"}))

    assert replay.status == 200
    assert replay.text == ""


def test_two_identical_commands_at_once_run_once(bot: BotHarness) -> None:
    body, headers = _signed_form(_command_fields(bot, "bogus"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: bot.requests.post(body, FORM, signing="unsigned", headers=headers), range(8)))

    assert all(a.status == 200 for a in answers)
    assert sorted(bool(a.text) for a in answers) == [False] * 7 + [True]


def test_an_ack_never_waits_for_the_store(bot: BotHarness) -> None:
    """A long store write elsewhere (the poller, a prune) must not hold Slack's 3 s: the replay claim is
    decided without a write transaction where the store is the process's alone (SQLite)."""
    import threading

    if not bot.services.store.exclusive:
        pytest.skip("a shared store claims in the database")
    body, headers = _signed_form(_command_fields(bot, "help"))
    holding, release = threading.Event(), threading.Event()

    def hold_the_store() -> None:
        with bot.services.store.lock:  # type: ignore[attr-defined]
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold_the_store)
    holder.start()
    assert holding.wait(10)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            first = pool.submit(bot.requests.post, body, FORM, signing="unsigned", headers=headers)
            answered = first.result(timeout=20)
    finally:
        release.set()
        holder.join(10)

    assert answered.status == 200 and "/aws-support create" in answered.text
    replay = bot.requests.post(body, FORM, signing="unsigned", headers=headers)
    assert replay.status == 200 and replay.text == ""


def test_a_request_served_before_a_restart_is_refused_after_it(bot_factory) -> None:
    first = bot_factory()
    body, headers = _signed_form(_command_fields(first, "bogus"))
    assert "bogus" in first.requests.post(body, FORM, signing="unsigned", headers=headers).text
    first.services.work.wait_idle(timeout=10)
    first.stop()

    again = bot_factory(db_path=first.db_path)
    replay = again.requests.post(body, FORM, signing="unsigned", headers=headers)

    assert replay.status == 200
    assert replay.text == ""


@pytest.mark.slow(seconds=8)
def test_a_claim_still_queued_behind_busy_work_at_shutdown_is_written_before_the_store_closes(bot_factory) -> None:
    first = bot_factory()
    gate = first.services.work.gate
    gate.max_wait_seconds = 60
    gate.request_started()  # a request that never ends: after-ack work waits at the gate past the close's waits
    body, headers = _signed_form(_command_fields(first, "help"))
    assert first.requests.post(body, FORM, signing="unsigned", headers=headers).status == 200
    first.stop()

    again = bot_factory(db_path=first.db_path)
    replay = again.requests.post(body, FORM, signing="unsigned", headers=headers)

    assert replay.status == 200
    assert replay.text == ""


def test_a_digest_command_replayed_after_its_claim_was_lost_posts_nothing_more(bot_factory) -> None:
    """On SQLite the replay claim is written just after the ack: a kill -9 then forgets it. A command
    that posts for everyone to see is still done once, by its trigger_id."""
    first = bot_factory()
    fields = dict(_command_fields(first, "digest"), trigger_id="1.2.digest-once")
    body, headers = _signed_form(fields)
    assert first.requests.post(body, FORM, signing="unsigned", headers=headers).status == 200
    first.slack.wait_for("chat.postMessage", lambda c: c.params.get("channel") == "C1")
    first.services.work.wait_idle(timeout=10)
    first.stop()
    lost = SqliteStore.open(first.db_path)  # the claim a kill -9 would not have let the bot write
    claimed = lost.table("requests")
    claimed.delete(next(k for k in sorted(claimed.keys()) if k.startswith("v0=")))
    lost.close()

    again = bot_factory(db_path=first.db_path)
    replay = again.requests.post(body, FORM, signing="unsigned", headers=headers)

    assert replay.status == 200
    again.services.work.wait_idle(timeout=10)
    assert len([c for c in again.slack.calls("chat.postMessage") if c.params.get("channel") == "C1"]) == 1


def _event_body(event: dict, event_id: str) -> bytes:
    envelope = {
        "type": "event_callback",
        "team_id": "T0FAKE",
        "api_app_id": "A0FAKE",
        "event": event,
        "event_id": event_id,
        "event_time": int(time.time()),
    }
    return json.dumps(envelope).encode()


def test_slacks_retry_reaches_bolt_even_with_a_signature_already_claimed(bot: BotHarness) -> None:
    """A crash between the claim and the dispatch: Slack's retry (X-Slack-Retry-Num) must still be
    served, whether it carries a new signature or the same one; the event_id keeps it single."""
    case = open_case_at_aws(bot)
    card = link_case(bot, case)
    event = bot.slack.add_message("C1", "Any news on this?", user="U1", thread_ts=card["ts"])
    body = _event_body(event, new_event_id())
    timestamp = str(int(time.time()))
    signature = sign(SIGNING_SECRET, timestamp, body)
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}
    assert bot.services.store.table("requests").claim(signature, int(timestamp))  # served, then lost

    assert bot.requests.post(body, "application/json", signing="unsigned", headers=headers).text == ""
    retry = dict(headers, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert bot.requests.post(body, "application/json", signing="unsigned", headers=retry).status == 200
    bot.slack.wait_for("reactions.add", lambda c: c.params["timestamp"] == event["ts"])
    assert bot.requests.post(body, "application/json", signing="unsigned", headers=retry).status == 200

    bot.services.work.wait_idle(timeout=10)
    sent = [c for c in communications(bot, case.case_id) if "Any news on this?" in c.body]
    assert len(sent) == 1, sent


def test_claims_older_than_the_signature_window_are_pruned(bot: BotHarness) -> None:
    from bot.web import REPLAY_WINDOW_SECONDS, ReplayGuard

    table = bot.services.store.table("requests")
    now = time.time()
    table.claim("v0=old", int(now - REPLAY_WINDOW_SECONDS - 1))
    table.claim("v0=recent", int(now - 60))
    guard = ReplayGuard(table, prune=lambda job: job(), claims=RememberedClaims(table, lambda write: write()))

    assert guard.prune(now) == 1
    assert "v0=old" not in table and "v0=recent" in table


class _Unlisted:
    """A table that refuses to be listed."""

    def __init__(self, table) -> None:
        self.table = table

    def __getattr__(self, name):
        if name in ("items", "keys", "values"):
            raise AssertionError(f"the prune listed the table ({name})")
        return getattr(self.table, name)


def test_the_minutes_prune_lists_no_claim_and_forgets_what_it_deleted(bot: BotHarness) -> None:
    # Listed and deleted one by one, 8000 claims cost every replica's minute 60 ms and more of CPU
    # (PostgreSQL) while it served acks.
    from bot.web import REPLAY_WINDOW_SECONDS, ReplayGuard

    table = bot.services.store.table("requests")
    claims = RememberedClaims(table, lambda write: write())
    guard = ReplayGuard(_Unlisted(table), prune=lambda job: job(), claims=claims)
    now = time.time()
    old = int(now - REPLAY_WINDOW_SECONDS - 1)
    assert guard.claim("v0=old", old) and guard.claim("v0=recent", int(now - 60))

    assert guard.prune(now) == 1
    assert "v0=old" not in table and "v0=recent" in table
    assert guard.claim("v0=old", old), "memory still held the pruned claim"
    assert not guard.claim("v0=recent", int(now - 60))


def test_pruning_is_handed_to_the_after_ack_work_at_most_once_a_minute(bot: BotHarness) -> None:
    from bot.web import PRUNE_EVERY_SECONDS, REPLAY_WINDOW_SECONDS, ReplayGuard

    table = bot.services.store.table("requests")
    table.claim("v0=old", int(time.time() - REPLAY_WINDOW_SECONDS - 1))
    jobs: list = []
    now = [0.0]
    claims = RememberedClaims(table, lambda write: write())
    guard = ReplayGuard(table, prune=jobs.append, claims=claims, clock=lambda: now[0])

    assert guard.claim("v0=a", int(time.time()))
    now[0] += PRUNE_EVERY_SECONDS - 1
    assert guard.claim("v0=b", int(time.time()))
    assert jobs == []
    now[0] += 2
    assert guard.claim("v0=c", int(time.time()))
    assert not guard.claim("v0=c", int(time.time()))
    [job] = jobs

    job()
    assert "v0=old" not in table and "v0=c" in table


class _DownTable:
    """A store table whose database is gone (what PostgreSQL raises when the server is unreachable)."""

    name = "requests"

    def items(self) -> list[tuple[str, object]]:
        return []

    def claim_many(self, items: dict[str, object], *, durable: bool = True) -> set[str]:
        from bot.store.backend import StoreError

        raise StoreError("connection refused")

    def delete_stamped_before(self, horizon: float) -> list[str]:
        from bot.store.backend import StoreError

        raise StoreError("connection refused")


def test_a_request_the_store_cannot_record_is_acked_and_its_work_answers_that_the_state_is_unavailable() -> None:
    """The ack does not wait for the database; the work after it does, and tells the person, not a traceback."""
    import io

    from bot import render
    from bot.ack_first import answering
    from bot.listeners.boundary import guarded
    from bot.web import CLAIM_CONFIRMATION, ReplayGuard, SlackDoor

    claims = SharedClaims(_DownTable())  # type: ignore[arg-type]
    try:
        door = SlackDoor(SIGNING_SECRET, ReplayGuard(_DownTable(), prune=lambda job: job(), claims=claims))  # type: ignore[arg-type]
        body, timestamp = b"command=%2Faws-support&text=list", str(int(time.time()))
        environ = {
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": FORM,
            "wsgi.input": io.BytesIO(body),
            "HTTP_X_SLACK_REQUEST_TIMESTAMP": timestamp,
            "HTTP_X_SLACK_SIGNATURE": sign(SIGNING_SECRET, timestamp, body),
        }

        assert door.admit(environ) is None
        answers: list[str] = []
        with answering(environ[CLAIM_CONFIRMATION].won):
            job = guarded("/aws-support list", answers.append, lambda: pytest.fail("ran unconfirmed"))
        job()

        assert answers == [render.text("store_not_writable")]
    finally:
        claims.close()


def test_request_claims_are_written_while_slow_aws_work_holds_every_worker(bot: BotHarness) -> None:
    """The claims' write was one more after-ack job: it waited for a free worker as long as slow AWS
    calls held them all, and a kill -9 meanwhile forgot the claims (review10)."""
    import threading

    if not bot.services.store.exclusive:
        pytest.skip("a shared store claims in the database before the ack")
    release = threading.Event()
    for _ in range(64):  # every worker of the after-ack pool
        bot.services.work.submit(lambda: release.wait(30))
    try:
        body, headers = _signed_form(_command_fields(bot, "help"))
        assert bot.requests.post(body, FORM, signing="unsigned", headers=headers).status == 200
        claims = bot.services.store.table("requests")
        deadline = time.monotonic() + 10
        while headers["X-Slack-Signature"] not in set(claims.keys()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert headers["X-Slack-Signature"] in set(claims.keys())
    finally:
        release.set()


def test_only_admitted_requests_hold_back_after_ack_work(bot: BotHarness) -> None:
    """Unsigned junk counted as a request in flight: a stream of it kept every after-ack job waiting
    its full second (review10)."""
    gate = bot.services.work.gate
    counted: list[int] = []
    started = gate.request_started
    gate.request_started = lambda: (counted.append(1), started())[1]  # type: ignore[method-assign]
    assert bot.requests.post(b"token=x", FORM, signing="unsigned").status == 401
    assert counted == []
    assert bot.command("help").status == 200
    assert counted == [1]
