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
