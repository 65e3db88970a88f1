"""The replay guard on PostgreSQL, shared by replicas: the ack does not wait for the database, and what
a request does after its ack waits for the database to confirm that no replica served it before."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from tests.cases.helpers import open_case_at_aws
from tests.support.harness import BotHarness

FORM = "application/x-www-form-urlencoded"


def signed_command(bot: BotHarness, text: str) -> tuple[bytes, dict[str, str], str]:
    """One signed `/aws-support <text>`, to be sent as is (and again: a replay); and its response_url."""
    response_url = bot.slack.response_url()
    body, headers = bot.requests.prepare_slash_command(text, response_url=response_url)
    return body, headers, response_url


@contextmanager
def database_locked(pg_url: str) -> Iterator[Callable[[], None]]:
    """Every statement on the bot's table waits meanwhile (a long migration, a stuck vacuum, a failover);
    the context's value releases the lock early."""
    conn = psycopg.connect(pg_url)
    conn.execute("LOCK TABLE kv IN ACCESS EXCLUSIVE MODE")
    released = threading.Event()

    def release() -> None:
        if not released.is_set():
            released.set()
            conn.rollback()

    try:
        yield release
    finally:
        release()
        conn.close()


def test_on_postgres_an_ack_does_not_wait_for_the_database(bot_factory, pg_url: str) -> None:
    bot = bot_factory(env={"DATABASE_URL": pg_url})
    case = open_case_at_aws(bot)
    body, headers, response_url = signed_command(bot, f"show {case.display_id}")
    help_body, help_headers, _ = signed_command(bot, "help")

    with database_locked(pg_url) as release:
        started = time.monotonic()
        helped = bot.requests.post(help_body, FORM, signing="unsigned", headers=help_headers, timeout=10)
        shown = bot.requests.post(body, FORM, signing="unsigned", headers=headers, timeout=10)
        acked_in = time.monotonic() - started
        assert helped.status == 200 and "/aws-support" in helped.text
        assert shown.status == 200
        assert acked_in < 10
        # The work after the ack waits for the database to confirm the request was not served before.
        time.sleep(0.5)
        assert bot.slack.responses(response_url) == []
        release()

    answer = bot.wait_for_response(response_url=response_url, timeout=20)
    assert case.display_id in str(answer)


def test_one_request_sent_to_two_replicas_at_once_is_served_once(bot_factory, pg_url: str) -> None:
    first = bot_factory(env={"DATABASE_URL": pg_url})
    second = bot_factory(env={"DATABASE_URL": pg_url})
    case = open_case_at_aws(first)
    body, headers, response_url = signed_command(first, f"show {case.display_id}")
    described = first.sandbox.calls["DescribeCases"]

    answers: list = []
    barrier = threading.Barrier(2)

    def send(bot: BotHarness) -> None:
        barrier.wait(10)
        answers.append(bot.requests.post(body, FORM, signing="unsigned", headers=headers))

    threads = [threading.Thread(target=send, args=(bot,)) for bot in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert [answer.status for answer in answers] == [200, 200]
    first.wait_for_response(response_url=response_url, timeout=20)
    assert first.services.work.wait_idle(timeout=20) and second.services.work.wait_idle(timeout=20)
    time.sleep(0.5)
    assert len(first.slack.responses(response_url)) == 1
    assert first.sandbox.calls["DescribeCases"] - described == 1, "the case asked for once, by one replica"


def test_a_request_replayed_to_another_replica_is_not_served_again(bot_factory, pg_url: str) -> None:
    first = bot_factory(env={"DATABASE_URL": pg_url})
    second = bot_factory(env={"DATABASE_URL": pg_url})
    case = open_case_at_aws(first)
    body, headers, response_url = signed_command(first, f"show {case.display_id}")
    assert first.requests.post(body, FORM, signing="unsigned", headers=headers).status == 200
    first.wait_for_response(response_url=response_url, timeout=20)
    assert first.services.work.wait_idle(timeout=20)
    aws_calls = first.sandbox.calls.total()
    first.slack.clear()

    replay = second.requests.post(body, FORM, signing="unsigned", headers=headers)

    assert replay.status == 200 and replay.text == ""
    assert second.services.work.wait_idle(timeout=20)
    first.slack.assert_no_calls(within=0.5, method="response_url")
    assert first.sandbox.calls.total() == aws_calls


def _steady_stream(bot: BotHarness, stop: threading.Event, every: float = 0.05) -> threading.Thread:
    """`/aws-support help` every `every` seconds (acked at once, nothing after its ack): requests keep
    arriving, as they do in a busy workspace."""

    def run() -> None:
        while not stop.is_set():
            bot.requests.slash_command("help", user_id="U2", channel_id="C2")
            stop.wait(every)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _modal_delay(bot: BotHarness, user: str) -> float:
    """Seconds from the ack of `/aws-support create` to its views.open reaching Slack."""
    before = len(bot.slack.calls("views.open"))
    response = bot.requests.slash_command("create Disk full", user_id=user, channel_id="C1")
    acked = time.time()
    assert response.status == 200
    opened = bot.slack.wait_for("views.open", count=before + 1, timeout=15)
    return opened[before].at - acked


def test_on_postgres_a_modal_opens_at_once_after_its_ack_under_a_steady_stream_of_requests(
    bot_factory, pg_url: str
) -> None:
    """A prompt job (`create`, the reply and reopen buttons, the pickers) waits for its request's claim
    (boundary.guarded), and the claims writer waits for a lull: under a steady stream of requests,
    views.open went out a whole second of the trigger_id's 3 s after the ack (review23)."""
    bot = bot_factory(env={"DATABASE_URL": pg_url})
    bot.services.work.gate.settle_seconds = 0.1  # longer than the stream's gaps: never a lull
    _modal_delay(bot, "U1")  # warm: the services list, the connection pool

    stop = threading.Event()
    stream = _steady_stream(bot, stop)
    try:
        time.sleep(0.3)
        delays = [_modal_delay(bot, f"U{n}") for n in range(3, 6)]
    finally:
        stop.set()
        stream.join(5)
    assert max(delays) < 0.5, f"views.open went out {delays} s after the ack (trigger_id lives 3 s)"


def test_a_request_replayed_to_another_replica_while_the_first_waits_for_a_lull_is_served_once(
    bot_factory, pg_url: str
) -> None:
    """Replica A is busy (a steady stream: its claims writer waits for a lull), and the same signed `show`
    reaches replica B meanwhile (a load balancer's retry, an attacker's replay). Both admit it in
    memory; the database gives it to exactly one, whichever writes first (review23)."""
    first = bot_factory(env={"DATABASE_URL": pg_url})
    second = bot_factory(env={"DATABASE_URL": pg_url})
    for bot in (first, second):
        bot.services.work.gate.settle_seconds = 0.1  # longer than the stream's gaps: never a lull
    case = open_case_at_aws(first)
    response_url = first.slack.response_url()
    body, headers = first.requests.prepare_slash_command(f"show {case.display_id}", response_url=response_url)
    described = first.sandbox.calls["DescribeCases"]

    stop = threading.Event()
    stream = _steady_stream(first, stop)
    try:
        time.sleep(0.3)
        assert first.requests.post(body, FORM, signing="unsigned", headers=headers).status == 200
        time.sleep(0.2)  # A's claim is still in memory only
        assert second.requests.post(body, FORM, signing="unsigned", headers=headers).status == 200
        first.wait_for_response(response_url=response_url, timeout=20)
        assert first.services.work.wait_idle(timeout=20) and second.services.work.wait_idle(timeout=20)
    finally:
        stop.set()
        stream.join(5)
    time.sleep(0.5)
    assert len(first.slack.responses(response_url)) == 1
    assert first.sandbox.calls["DescribeCases"] - described == 1
