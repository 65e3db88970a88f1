"""Live updates end to end: the real bot, the sandbox's case events, moto's SQS or the sandbox's own.

Every bot here polls once an hour, so what reaches a thread within the test got there through an
event. The sandbox emits a Support Case Update for each change of a case; with moto, a forwarder
carries them into moto's queue as an EventBridge rule would.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.events.envelope import parse_message
from bot.sandbox import SandboxServer
from bot.sandbox.case_events import support_case_update
from bot.sandbox.state import ACCOUNT_ID
from bot.sync.events import CaseEventHandler, single_gateway
from bot.sync.poster import ChannelPacer
from tests.events.live import LiveQueue
from tests.sandbox.helpers import wait_until
from tests.support.harness import bot_env
from tests.sync.helpers import communication_messages, linked_case, open_case, shown_text, status_messages

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """The emulator with its case events on and its engineer silent (tests write AWS's replies)."""
    server = SandboxServer(reply_delay_seconds=-1, events=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["moto", "sandbox"])
def live(request: pytest.FixtureRequest, sandbox: SandboxServer) -> Iterator[LiveQueue]:
    endpoint = request.getfixturevalue("moto_endpoint") if request.param == "moto" else None
    queue = LiveQueue(request.param, sandbox, endpoint)
    try:
        yield queue
    finally:
        queue.close()


def live_bot(bot_factory: Any, live: LiveQueue, **options: Any) -> Any:
    return bot_factory(env=live.env(), events=live.events(), **options)


def running(bot: Any, live: LiveQueue) -> None:
    """Workers started, the poller's first cycle over, and the events so far (the case's creation) read."""
    bot.start_workers()
    assert wait_until(lambda: bot.services.poller.health()["cycles"] >= 1, timeout=10)
    assert wait_until(live.drained, timeout=15), live.counts()


def consumer(bot: Any) -> Any:
    [worker] = [w for w in bot.services.workers if w.name == "events"]
    return worker


def texts(bot: Any, thread: str) -> list[str]:
    return [shown_text(m) for m in communication_messages(bot, "C1", thread)]


def event_for(case: Any, event_name: str = "AddCommunicationToCase", **fields: str) -> str:
    params = {
        "account": ACCOUNT_ID,
        "case_id": case.case_id,
        "display_id": case.display_id,
        "event_name": event_name,
        "communication_id": fields.pop("communication_id", f"comm-{uuid.uuid4()}"),
        "origin": "AWS" if event_name == "AddCommunicationToCase" else "",
        "event_id": str(uuid.uuid4()),
    }
    params.update(fields)
    return json.dumps(support_case_update(**params))


def test_an_aws_reply_reaches_the_thread_once_through_its_event(bot_factory, live: LiveQueue) -> None:
    bot = live_bot(bot_factory, live)
    case, thread = linked_case(bot)
    running(bot, live)

    bot.sandbox.add_aws_reply(case.case_id, "We restarted the host.")

    assert wait_until(lambda: texts(bot, thread), timeout=10)
    assert wait_until(live.drained, timeout=10), live.counts()
    assert texts(bot, thread) == ["We restarted the host."]
    assert bot.services.poller.health()["cycles"] == 1  # the first cycle only: the event brought it
    health = bot.health().json
    events = health["workers"]["events"]
    assert events["alive"] and events["last_event_at"] and events["messages_handled"] >= 1
    assert 0 <= events["last_message_wait_seconds"] < 10  # the queue's lag
    assert events["pipeline"]["looks_broken"] is False


def test_duplicate_and_redelivered_events_post_nothing_more(bot_factory, live: LiveQueue) -> None:
    bot = live_bot(bot_factory, live)
    case, thread = linked_case(bot)
    running(bot, live)
    bot.sandbox.add_aws_reply(case.case_id, "One answer.")
    assert wait_until(lambda: texts(bot, thread), timeout=10)
    assert wait_until(live.drained, timeout=10)
    handled = consumer(bot).health()["messages_handled"]
    lines = status_messages(bot, "C1", thread)  # AWS now waits for the customer: said once

    # The same change announced again: a resend, a second rule, an old message coming back.
    duplicate = event_for(case, communication_id="comm-dup")
    for _ in range(3):
        live.send(duplicate)
    live.send(event_for(case, "ReopenCase"))
    assert wait_until(lambda: consumer(bot).health()["messages_handled"] >= handled + 2, timeout=10)
    assert wait_until(live.drained, timeout=10)
    bot.services.sync.run_cycle()  # and the backstop poll sees the same communication

    assert texts(bot, thread) == ["One answer."]
    assert len(lines) == 1 and status_messages(bot, "C1", thread) == lines


def test_an_event_and_a_poll_cycle_that_see_the_same_reply_post_it_once(bot) -> None:
    bot.services.sync.poster.pacer = ChannelPacer(per_second=1000, burst=1000)
    case, thread = linked_case(bot)
    handler = CaseEventHandler(
        sync=bot.services.sync, watches=bot.services.watches, gateway_for=single_gateway(bot.services.gateway)
    )
    for n in range(8):
        bot.sandbox.add_aws_reply(case.case_id, f"Answer {n}.")
        event = parse_message(event_for(case, communication_id=f"comm-{n}"))
        start = threading.Barrier(2)
        outcomes: list[Any] = []

        def by_event(event: Any = event, start: threading.Barrier = start, outcomes: list[Any] = outcomes) -> None:
            start.wait()
            outcomes.append(handler.handle(event))

        def by_poll(start: threading.Barrier = start) -> None:
            start.wait()
            bot.services.sync.run_cycle()

        threads = [threading.Thread(target=by_event), threading.Thread(target=by_poll)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert [o.done for o in outcomes] == [True]
        assert texts(bot, thread) == [f"Answer {i}." for i in range(n + 1)]


@pytest.mark.slow(seconds=4)
def test_an_aws_reply_while_the_card_is_being_posted_reaches_the_new_thread(bot) -> None:
    """Slack takes its time answering the card's post; AWS answers meanwhile and its event comes before
    the link is recorded. The event waits for the link, and the answer belongs in the new thread."""
    bot.services.sync.poster.pacer = ChannelPacer(per_second=1000, burst=1000)
    case = open_case(bot)
    handler = CaseEventHandler(
        sync=bot.services.sync, watches=bot.services.watches, gateway_for=single_gateway(bot.services.gateway)
    )
    answer_card = bot.slack.hold_after_acting("chat.postMessage")
    try:
        bot.command(f"link {case.display_id}")
        [post] = bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None)
        thread = post.response["ts"]
        bot.sandbox.add_aws_reply(case.case_id, "Answered while the card was on its way.")
        event = parse_message(event_for(case, communication_id="comm-early"))

        early = handler.handle(event)

        assert not early.done, "kept until the thread is linked"
        time.sleep(3)  # Slack's answer comes well after AWS's reply (longer than the clocks' skew)
    finally:
        answer_card.set()
    bot.wait_for_response()
    assert bot.services.cases.case_for_thread("C1", thread) == case.case_id

    assert handler.handle(event).done
    assert texts(bot, thread) == ["Answered while the card was on its way."]


def test_malformed_foreign_and_unknown_case_messages_are_deleted_and_change_nothing(
    bot_factory, live: LiveQueue
) -> None:
    bot = live_bot(bot_factory, live)
    case, thread = linked_case(bot)
    running(bot, live)
    other = open_case(bot, "Nobody links this one")  # its CreateCase event: nobody follows it
    unknown = "case-123456789012-muen-2026-00000000deadbeef"

    live.send("not json")
    live.send(json.dumps({"source": "aws.health", "detail-type": "AWS Health Event", "detail": {}}))
    live.send(json.dumps({"source": "aws.support", "detail-type": "Support Case Update", "account": "x"}))
    live.send(event_for(case, case_id=unknown))
    live.send(event_for(case, case_id=other.case_id))
    live.send(event_for(case, account="210987654321", case_id=unknown))

    assert wait_until(lambda: consumer(bot).health()["messages_ignored"] >= 3, timeout=10)
    assert wait_until(live.drained, timeout=10), live.counts()
    assert consumer(bot).is_alive()
    assert texts(bot, thread) == []
    assert bot.slack.messages("C1") == [m for m in bot.slack.messages("C1") if m["ts"] == thread]


def test_throttled_describe_communications_while_an_event_waits_is_retried_and_posted_once(
    bot_factory, live: LiveQueue
) -> None:
    bot = live_bot(bot_factory, live, aws_attempts=1)
    case, thread = linked_case(bot)
    running(bot, live)
    # Resolving makes the sync sweep every communication (DescribeCommunications) before the status line.
    bot.sandbox.inject_fault("DescribeCommunications", "ThrottlingException", count=3)
    bot.sandbox.reset_calls()
    bot.sandbox.add_aws_reply(case.case_id, "Fixed on our side; resolving.", status="resolved")

    assert wait_until(lambda: status_messages(bot, "C1", thread), timeout=30)
    assert wait_until(live.drained, timeout=15), live.counts()
    assert bot.sandbox.calls["DescribeCommunications"] >= 4  # three throttled, then the one that worked
    assert consumer(bot).health()["messages_retried"] >= 1  # brought back by ChangeMessageVisibility
    assert texts(bot, thread) == ["Fixed on our side; resolving."]
    assert len(status_messages(bot, "C1", thread)) == 1
    assert bot.services.poller.health()["cycles"] == 1


def test_slack_failing_for_now_keeps_the_event_until_the_post_is_recorded(bot_factory, live: LiveQueue) -> None:
    bot = live_bot(bot_factory, live)
    case, thread = linked_case(bot)
    running(bot, live)
    bot.slack.fail("chat.postMessage", "internal_error", status=500, count=2)

    bot.sandbox.add_aws_reply(case.case_id, "Try the new AMI.")

    assert wait_until(lambda: texts(bot, thread), timeout=20)
    assert wait_until(live.drained, timeout=15), live.counts()
    assert consumer(bot).health()["messages_retried"] >= 1
    assert texts(bot, thread) == ["Try the new AMI."]
    assert bot.services.sync.state(case.case_id).pending == []


def test_a_case_opened_outside_slack_is_carded_in_a_watching_channel_by_its_event(
    bot_factory, live: LiveQueue
) -> None:
    bot = live_bot(bot_factory, live)
    bot.services.watches.grace = bot.services.watches.grace * 0  # no case here is opened from Slack
    bot.services.watches.watch("C9", "UADMIN", "all")
    running(bot, live)

    case = open_case(bot, "Opened in the console")

    # The card itself (a thread's parent carries its own ts), not the opening communication in its thread.
    cards = wait_until(
        lambda: [
            m
            for m in bot.slack.messages("C9")
            if case.display_id in json.dumps(m) and m.get("thread_ts", m.get("ts")) == m.get("ts")
        ],
        timeout=10,
    )
    assert len(cards) == 1
    assert wait_until(live.drained, timeout=10)
    assert bot.services.cases.link_in(case.case_id, "C9") is not None
    assert bot.services.poller.health()["cycles"] == 1


@pytest.mark.slow(seconds=9)
def test_a_kill_9_between_the_post_and_the_delete_redelivers_and_posts_nothing_more(
    bot_factory, live: LiveQueue, fake_slack, sandbox: SandboxServer
) -> None:
    first = live_bot(bot_factory, live)
    case, thread = linked_case(first)
    running(first, live)
    first.stop()

    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING", **bot_env(fake_slack, first.db_path)}
    env.update({key: value for key, value in live.env().items() if value is not None})
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.events.child_bot", sandbox.url, live.endpoint],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.strip()) for line in child.stdout or []], daemon=True).start()
    try:
        assert lines.get(timeout=60) == "ready"
        sandbox.add_aws_reply(case.case_id, "Posted, then killed before the delete.")
        assert lines.get(timeout=30) == "deleting"
        # The post is recorded and in the thread; the message is not deleted.
        assert texts(first, thread) == ["Posted, then killed before the delete."]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert not live.drained()

    second = live_bot(bot_factory, live, db_path=first.db_path)
    second.start_workers()
    # Back after its visibility timeout, handled again, deleted this time.
    assert wait_until(lambda: consumer(second).health()["messages_handled"] >= 1 and live.drained(), timeout=30)
    assert texts(second, thread) == ["Posted, then killed before the delete."]
    assert second.services.sync.state(case.case_id).pending == []


def test_polls_that_keep_finding_what_events_should_bring_say_the_pipeline_looks_broken(
    bot_factory, live: LiveQueue, caplog
) -> None:
    bot = live_bot(bot_factory, live)  # workers not started: no event is read
    case, thread = linked_case(bot)
    [events] = [w for w in bot.services.background if w.name == "events"]
    pipeline = events.watch
    assert pipeline is bot.services.poller.pipeline  # one watch, the consumer's and the poller's
    pipeline.silence_seconds, pipeline.misses = 0, 2

    for n in range(2):
        bot.sandbox.add_aws_reply(case.case_id, f"Only the poll saw this ({n}).")
        bot.services.poller.run_cycle()

    assert "the event pipeline looks broken" in caplog.text
    assert events.health()["pipeline"]["looks_broken"] is True
    assert len(texts(bot, thread)) == 2
