"""Bolt runs the bot's listeners on the request's own thread and answers Slack when they return:
no listener may hold that answer for a Web API call or a store round trip after its ack. Opening
or redrawing a modal happens on the prompt pool, at once (a trigger_id lives 3 s), while Slack
already has its 200; a noted record is queued without reading the store again.

The first tests hold the Web API call a listener makes after its ack: were the answer waiting for
it, the request would time out (the harness gives 15 s; the hold lasts 60). Those after them come
from review11's attack on this change."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bot.store.errors import StoreUnavailable
from tests.cases.helpers import SERVICE, link_case, open_case_at_aws
from tests.cases.test_card_buttons import click
from tests.cases.test_modal import open_modal, values
from tests.support.fake_slack import FakeSlack


@contextmanager
def slack_holding(slack: FakeSlack, method: str) -> Iterator[threading.Event]:
    released = slack.hold_after_acting(method)
    try:
        yield released
    finally:
        released.set()
        slack.heal(method)


def test_create_answers_slack_before_its_form_is_opened(bot):
    with slack_holding(bot.slack, "views.open"):
        response = bot.command("create Disk full on db-1")
        assert response.status == 200
        [opened] = bot.slack.wait_for("views.open")  # meanwhile, with the command's trigger_id
        assert opened.params["trigger_id"] == response.extra["trigger_id"]


def test_a_reply_button_answers_slack_before_its_modal_is_opened(bot):
    card = link_case(bot, open_case_at_aws(bot))
    with slack_holding(bot.slack, "views.open"):
        assert click(bot, card, "case_reply").status == 200
        [opened] = bot.slack.wait_for("views.open")
        assert opened.params["view"]["callback_id"] == "case_reply"


def test_a_chosen_service_answers_slack_before_the_form_is_redrawn(bot):
    view = open_modal(bot)
    chosen = {
        "type": "external_select",
        "action_id": "service",
        "block_id": "service",
        "selected_option": {"text": {"type": "plain_text", "text": "EC2"}, "value": SERVICE},
    }
    with slack_holding(bot.slack, "views.update"):
        response = bot.requests.block_actions(chosen, view=view, state_values={"service": {"service": chosen}})
        assert response.status == 200
        [update] = bot.slack.wait_for("views.update")
        assert update.params["view_id"] == view["id"]


def test_help_is_answered_in_the_ack_itself(bot):
    """The ack's body is what Bolt returns once the listener ends: help has no second request."""
    response = bot.command("help")
    assert response.status == 200 and response.body["response_type"] == "ephemeral"
    assert response.body["blocks"]
    bot.slack.assert_no_calls(method="response_url")


SLACK_LIMIT_SECONDS = 3.0
BUSY_SECONDS = 4.0  # longer than Slack waits for an answer


@contextmanager
def store_busy_right_after_noting(bot, seconds: float = BUSY_SECONDS) -> Iterator[list[threading.Thread]]:
    """Right after the journal notes a record (the last store call a listener makes BEFORE its ack),
    another thread holds the store for `seconds`, as a concurrent slow write does (an after-ack job's
    write on a stalled disk; on PostgreSQL, a pool whose connections are all taken). A listener that
    touches the store again after its ack now holds Slack's answer for that long."""
    journal = bot.services.cases.journal
    store = bot.services.store
    real = journal.record
    release = threading.Event()
    holders: list[threading.Thread] = []

    def record(*args, **kwargs):
        lease = real(*args, **kwargs)
        taken = threading.Event()

        def hold() -> None:
            with store.lock:
                taken.set()
                release.wait(seconds)

        holder = threading.Thread(target=hold, name="review11-store-holder", daemon=True)
        holder.start()
        taken.wait(5)
        holders.append(holder)
        return lease

    journal.record = record
    try:
        yield holders
    finally:
        release.set()
        del journal.record
        for holder in holders:
            holder.join(timeout=10)


# After its ack a listener touches no store: Slack's answer waits for the listener ----------------


def test_create_form_submission_is_answered_without_waiting_for_the_store_after_its_ack(bot):
    """views/cases.py submit_create_case: ack(), then services.cases.start(lease) ->
    JournalWork.submit -> journal.get (a store read) on the request thread; Bolt answers only after."""
    view = open_modal(bot)
    with store_busy_right_after_noting(bot) as holders:
        started = time.monotonic()
        answer = bot.requests.view_submission(view, values=values())
        elapsed = time.monotonic() - started
    assert holders, "the form was not noted"
    assert answer.status == 200 and not answer.body
    assert elapsed < SLACK_LIMIT_SECONDS, f"Slack's answer waited {elapsed:.1f}s for the store after the ack"


def test_reply_form_submission_is_answered_without_waiting_for_the_store_after_its_ack(bot):
    """views/cases.py submit_reply: the same after-ack services.cases.start(lease)."""
    card = link_case(bot, open_case_at_aws(bot))
    assert click(bot, card, "case_reply").status == 200
    [opened] = bot.slack.wait_for("views.open")
    view = opened.response["view"]
    reply = {
        "text": {"text": {"type": "plain_text_input", "value": "more logs attached"}},
        "cc": {"cc": {"type": "plain_text_input", "value": ""}},
        "attachments": {"attachments": {"type": "file_input", "files": []}},
    }
    with store_busy_right_after_noting(bot) as holders:
        started = time.monotonic()
        answer = bot.requests.view_submission(view, values=reply)
        elapsed = time.monotonic() - started
    assert holders, "the reply was not noted"
    assert answer.status == 200
    assert elapsed < SLACK_LIMIT_SECONDS, f"Slack's answer waited {elapsed:.1f}s for the store after the ack"


def test_a_thread_reply_event_is_answered_without_waiting_for_the_store_after_its_ack(bot):
    """events.py thread_message runs before Bolt's auto-ack is sent now: services.cases.start(lease)
    reads the journal there. Past 3 s Slack redelivers the event (X-Slack-Retry-Num)."""
    bot.slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    card = link_case(bot, open_case_at_aws(bot))
    with store_busy_right_after_noting(bot) as holders:
        started = time.monotonic()
        delivery = bot.user_message("C1", "here are the logs", thread_ts=card["ts"])
        elapsed = time.monotonic() - started
    assert holders, "the reply was not noted"
    assert delivery.response.status == 200
    assert elapsed < SLACK_LIMIT_SECONDS, f"the event's 200 waited {elapsed:.1f}s for the store after the ack"


# The error boundary, now that Slack's answer waits for the listener ---------------------------


def test_a_form_noted_and_acked_stays_closed_when_starting_its_work_fails(bot):
    """Bolt answers a failure after the ack in the ack's place: the modal the ack closed would come
    back with "try again" on a form already noted (a second submit of it does nothing; a new form
    would open a second case). The ack stands; the person is told privately."""
    view = open_modal(bot)
    runner = bot.services.cases.runner

    def failing_submit(*args, **kwargs):
        raise StoreUnavailable("disk I/O error")

    runner.submit = failing_submit
    try:
        answer = bot.requests.view_submission(view, values=values())
    finally:
        del runner.submit
    assert answer.status == 200
    assert not answer.body, f"an acked, noted form was answered with {answer.body}"
    [told] = bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("channel") == "U1")
    assert "cannot keep" in told.params["text"]


def test_a_button_clicked_while_the_prompt_pool_is_shut_down_still_gets_a_200(bot):
    """reply_button: ack(); promptly() -> prompt_work.submit raises RuntimeError; the error handler's
    answer for block_actions is itself submitted to prompt_work (_answer_after_response) and raises
    again, out of the handler: Bolt's dispatch answers 500 (Slack shows the click failed; in Socket
    Mode nothing is sent back and Slack resends the envelope). Reachable for a request still in
    flight when Services.close runs (waitress gives its threads 5 s, then close goes on)."""
    card = link_case(bot, open_case_at_aws(bot))
    bot.services.prompt_work.shutdown(wait=False, cancel_futures=True)
    response = click(bot, card, "case_reply")
    assert response.status == 200, f"Slack got {response.status}"


def test_closing_gives_prompt_work_three_seconds_from_its_start_then_drops_what_waits(bot_factory):
    """review12: the prompt pool's wait came after the work pool's, and a stop could outlast a
    container's 10 s; jobs still queued after it ran later against a closed store."""
    bot = bot_factory()
    opened = []
    with slack_holding(bot.slack, "views.open"):
        assert bot.command("create Disk full").status == 200
        bot.slack.wait_for("views.open")  # a prompt job, stuck in its Web API call
        pool = bot.services.prompt_work
        pool.max_workers = 1  # what comes next waits behind it in the queue
        queued = pool.submit(opened.append, "late")
        started = time.monotonic()
        bot.stop()
        took = time.monotonic() - started
    assert took < 5, f"closing took {took:.1f}s"
    assert queued.cancelled() and not opened


def test_create_while_the_prompt_pool_is_shut_down_is_acked_and_logged_without_a_traceback(bot, caplog):
    bot.services.prompt_work.shutdown(wait=False, cancel_futures=True)
    assert bot.command("create Disk full").status == 200
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    assert any("stopping" in r.getMessage() for r in caplog.records)
