"""Thread to case: a person's reply in the card's thread goes to AWS once, attributed, confirmed."""

from __future__ import annotations

import threading

import pytest

from bot.cases.service import MAX_BODY, outbound_key
from tests.cases.helpers import (
    attributed,
    communications,
    fast_retries,
    link_case,
    open_case_at_aws,
    sent_texts,
    thread_key,
)
from tests.support.slack_requests import message_changed_event, message_deleted_event


def linked(bot):
    bot.slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    case = open_case_at_aws(bot)
    card = link_case(bot, case)
    return case, card


def wait_for_reaction(bot, ts):
    return bot.slack.wait_for("reactions.add", lambda c: c.params["timestamp"] == ts)


def test_a_thread_reply_is_added_to_the_case_and_confirmed(bot):
    case, card = linked(bot)
    delivery = bot.user_message(
        "C1", "Here is the <https://status.example.com|status page> &amp; logs", thread_ts=card["ts"]
    )
    assert delivery.response.status == 200
    [reaction] = wait_for_reaction(bot, delivery.event["ts"])
    assert reaction.params["name"] == "white_check_mark"
    latest = communications(bot, case.case_id)[-1]
    text = "Here is the status page (https://status.example.com) & logs"
    assert latest.body == attributed("ana", thread_key("C1", delivery.event["ts"]), text)
    assert outbound_key(case.case_id, latest.body) in bot.services.store.table("outbound")


def test_redelivered_event_adds_the_communication_once(bot):
    case, card = linked(bot)
    before = len(communications(bot, case.case_id))
    delivery = bot.user_message("C1", "only once please", thread_ts=card["ts"])
    wait_for_reaction(bot, delivery.event["ts"])
    assert bot.redeliver(delivery, retry_num=1).status == 200
    assert bot.redeliver(delivery, retry_num=2).status == 200
    bot.services.work.wait_idle(timeout=10)
    only_once = attributed("ana", thread_key("C1", delivery.event["ts"]), "only once please")
    assert [c.body for c in communications(bot, case.case_id)[before:]] == [only_once]
    assert bot.sandbox.calls["AddCommunicationToCase"] == 1


def test_internal_bot_edited_deleted_and_joined_messages_are_not_sent(bot):
    case, card = linked(bot)
    thread = card["ts"]
    bot.user_message("C1", "// just between us", thread_ts=thread)
    bot.requests.event_callback(
        bot.slack.add_message("C1", "bot says hi", user=None, thread_ts=thread, bot_id="B9", subtype="bot_message")
    )
    bot.requests.event_callback(
        bot.slack.add_message("C1", "a bot with a user", user="U5", thread_ts=thread, bot_id="B9")
    )
    original = bot.slack.add_message("C1", "typo", user="U1", thread_ts=thread)
    bot.requests.event_callback(message_changed_event("C1", original, "fixed typo"))
    bot.requests.event_callback(message_deleted_event("C1", original))
    bot.requests.event_callback(
        bot.slack.add_message("C1", "<@U3> has joined", user="U3", thread_ts=thread, subtype="channel_join")
    )
    bot.user_message("C1", "top-level message, not in the thread")
    bot.user_message("C1", "reply in an unrelated thread", thread_ts="1111.2222")
    # A real reply after all of them proves they were processed (and skipped) first.
    last = bot.user_message("C1", "the real reply", thread_ts=thread)
    wait_for_reaction(bot, last.event["ts"])
    bot.services.work.wait_idle(timeout=10)
    assert bot.sandbox.calls["AddCommunicationToCase"] == 1
    assert communications(bot, case.case_id)[-1].body == attributed(
        "ana", thread_key("C1", last.event["ts"]), "the real reply"
    )


def test_files_in_a_thread_reply_become_attachments(bot):
    case, card = linked(bot)
    shot = bot.slack.add_file("graph.png", b"\x89PNG fake", "image/png")
    delivery = bot.user_message("C1", "see graph", thread_ts=card["ts"], files=[shot], subtype="file_share")
    wait_for_reaction(bot, delivery.event["ts"])
    latest = communications(bot, case.case_id)[-1]
    [attachment] = latest.attachments
    assert attachment.file_name == "graph.png"
    assert bot.services.gateway.attachment(attachment.attachment_id).data == b"\x89PNG fake"


def test_a_long_reply_is_split_in_order_and_nothing_is_lost(bot):
    case, card = linked(bot)
    words = [f"w{i}" for i in range(3000)]
    delivery = bot.user_message("C1", " ".join(words), thread_ts=card["ts"])
    wait_for_reaction(bot, delivery.event["ts"])
    prefix = attributed("ana", thread_key("C1", delivery.event["ts"]), "(")
    sent = [c.body for c in communications(bot, case.case_id) if c.body.startswith(prefix)]
    assert len(sent) >= 2 and all(len(body) <= MAX_BODY for body in sent)
    assert " ".join(body.split(") ", 1)[1] for body in sent).split() == words


def test_a_failed_reply_is_reported_in_the_thread(bot):
    case, card = linked(bot)
    fast_retries(bot)  # 5xx are retried until a deadline, then reported
    bot.sandbox.inject_fault(operation="AddCommunicationToCase", code="InternalServerError", count=10_000)
    delivery = bot.user_message("C1", "will this arrive?", thread_ts=card["ts"])
    [report] = bot.slack.wait_for(
        "chat.postMessage",
        lambda c: c.params.get("thread_ts") == card["ts"] and "your reply" in c.params.get("text", ""),
        timeout=20,
    )
    # Each try's outcome was a 5xx: AWS may have taken the last one, so it is not said "not sent".
    assert "internal error" in report.params["text"] and "may be on the case" in report.params["text"]
    assert "<@U1>" in report.params["text"]
    assert not bot.slack.calls("reactions.add", lambda c: c.params["timestamp"] == delivery.event["ts"])


def test_replies_in_one_thread_reach_aws_in_the_order_written(bot):
    case, card = linked(bot)
    deliveries = [bot.user_message("C1", f"message {i}", thread_ts=card["ts"]) for i in range(5)]
    for delivery in deliveries:
        wait_for_reaction(bot, delivery.event["ts"])
    bodies = [c.body for c in communications(bot, case.case_id)][-5:]
    assert bodies == [
        attributed("ana", thread_key("C1", d.event["ts"]), f"message {i}") for i, d in enumerate(deliveries)
    ]


def test_a_reply_half_sent_when_the_bot_died_is_finished_once_after_restart(bot_factory):
    first = bot_factory()
    first.slack.add_user("U1", real_name="Ana", display_name="ana")
    case, card = linked(first)
    journal = first.services.cases.journal
    # What a kill -9 leaves: the reply noted, part 1 of 2 being tried and accepted by AWS, unrecorded.
    lease = first.services.cases.note_thread_reply(
        channel="C1", thread_ts=card["ts"], message_ts="1700000000.000100", user="U1", text="halves", files=[]
    )
    key = thread_key("C1", "1700000000.000100")
    bodies = [attributed("ana", key, "(1/2) first half"), attributed("ana", key, "(2/2) second half")]
    journal.save(lease, case_id=case.case_id, bodies=bodies, sent=0, trying=0)
    first.services.gateway.add_communication(case.case_id, bodies[0])
    db_path = first.db_path
    first.stop()

    second = bot_factory(db_path=db_path)
    assert second.services.cases.recover() == 1
    second.services.work.wait_idle(timeout=10)
    sent = [c.body for c in communications(second, case.case_id) if "half" in c.body]
    assert sent == bodies
    assert second.services.cases.journal.get(key).state == "done"
    assert second.services.cases.recover() == 0


def _card_noted_before_a_crash(bot, case):
    """What a kill -9 leaves between the card's intent and its link: a pending "card" record."""
    from bot.store.journal import Lease

    journal = bot.services.cases.journal
    data = {"case_id": case.case_id, "channel": "C1", "linked_by": "U1"}
    lease: Lease = journal.record(f"card:{case.case_id}|C1|1", "card", f"case:{case.case_id}", data)
    journal.save(lease, card_posting=True)


def test_a_card_posted_just_before_a_crash_is_adopted_not_posted_twice(bot_factory):
    first = bot_factory()
    case = open_case_at_aws(first)
    # What a kill -9 leaves between chat.postMessage and the link: the intent, and the card in Slack.
    _card_noted_before_a_crash(first, case)
    posted = first.services.slack.chat_postMessage(
        channel="C1",
        text="card",
        metadata={"event_type": "aws_support_case", "event_payload": {"case_id": case.case_id}},
    )
    db_path = first.db_path
    first.stop()

    second = bot_factory(db_path=db_path)
    assert second.services.cases.recover() == 1
    second.services.work.wait_idle(timeout=10)
    link = second.services.cases.link_in(case.case_id, "C1")
    assert link is not None and link.card_ts == posted["ts"]
    assert second.services.cases.case_for_thread("C1", posted["ts"]) == case.case_id
    assert len(second.slack.calls("chat.postMessage")) == 1  # only the one made before the crash
    assert second.services.cases.recover() == 0


def test_a_card_posted_just_before_a_crash_is_adopted_in_a_busy_channel(bot_factory):
    """The card scrolled past the last 100 messages of the channel before the restart: it is still
    found (looked for since its post began), not posted a second time."""
    import time

    first = bot_factory()
    case = open_case_at_aws(first)
    _card_noted_before_a_crash(first, case)
    lease = first.services.cases.journal.held(f"card:{case.case_id}|C1|1")
    first.services.cases.journal.save(lease, card_posting=True, card_posting_at=time.time())
    posted = first.services.slack.chat_postMessage(
        channel="C1",
        text="card",
        metadata={"event_type": "aws_support_case", "event_payload": {"case_id": case.case_id}},
    )
    for n in range(150):  # a busy channel while the bot was down
        first.slack.add_message("C1", f"chatter {n}")
    db_path = first.db_path
    first.stop()

    second = bot_factory(db_path=db_path)
    assert second.services.cases.recover() == 1
    second.services.work.wait_idle(timeout=10)
    assert second.services.cases.link_in(case.case_id, "C1").card_ts == posted["ts"]
    assert len(second.slack.calls("chat.postMessage")) == 1  # only the one made before the crash


def test_a_card_lost_in_a_crash_is_posted_after_restart(bot_factory):
    first = bot_factory()
    case = open_case_at_aws(first)
    _card_noted_before_a_crash(first, case)
    db_path = first.db_path
    first.stop()

    second = bot_factory(db_path=db_path)
    assert second.services.cases.recover() == 1
    second.services.work.wait_idle(timeout=10)
    [post] = second.slack.calls("chat.postMessage")
    assert second.services.cases.link_in(case.case_id, "C1").card_ts == post.response["ts"]


def test_a_thread_reply_is_in_the_store_before_slack_gets_its_ack(bot):
    case, card = linked(bot)
    delivery = bot.user_message("C1", "noted first", thread_ts=card["ts"])
    assert delivery.response.status == 200
    # Checked right after the 200, whatever the after-ack work has done by now.
    entry = bot.services.cases.journal.get(thread_key("C1", delivery.event["ts"]))
    assert entry is not None and entry.data["text"] == "noted first"
    wait_for_reaction(bot, delivery.event["ts"])


def test_replies_acked_but_not_started_before_a_crash_are_sent_after_restart(bot_factory):
    first = bot_factory()
    first.slack.add_user("U1", real_name="Ana", display_name="ana")
    case, card = linked(first)
    # What a kill -9 right after the acks leaves: two noted replies, nothing sent yet.
    assert first.services.cases.note_thread_reply(
        channel="C1", thread_ts=card["ts"], message_ts="1700000001.000100", user="U1", text="from the thread", files=[]
    )
    first.services.cases.note_command_reply(case.display_id, "from the command", user="U1", channel="C1")
    db_path = first.db_path
    first.stop()

    second = bot_factory(db_path=db_path)
    assert second.services.cases.recover() == 2
    second.services.work.wait_idle(timeout=10)
    texts = sent_texts(second, case.case_id)
    assert texts.count("from the thread") == 1
    assert texts.count("from the command") == 1
    assert second.services.cases.recover() == 0


def test_one_broken_record_does_not_stop_the_others_from_being_resumed(bot_factory):
    first = bot_factory()
    first.slack.add_user("U1", real_name="Ana", display_name="ana")
    case, card = linked(first)
    first.services.cases.journal.record("reply:C1:1.000001", "reply", "C1|1.0", {"broken": "not a reply record"})
    first.services.cases.note_thread_reply(
        channel="C1", thread_ts=card["ts"], message_ts="1700000002.000100", user="U1", text="still sent", files=[]
    )
    db_path = first.db_path
    first.stop()

    second = bot_factory(db_path=db_path)
    second.services.cases.recover()
    second.services.work.wait_idle(timeout=10)
    assert "still sent" in sent_texts(second, case.case_id)
    assert second.services.cases.journal.get("reply:C1:1.000001").state == "failed"


def test_a_display_name_reaches_aws_as_people_wrote_it_not_escaped_for_slack(bot):
    # AWS is no mrkdwn reader: "A&B" must not arrive as "A&amp;B", nor "<Ops>" as "&lt;Ops&gt;".
    bot.slack.add_user("U1", real_name="A&B <Ops>", display_name="A&B <Ops>")
    case = open_case_at_aws(bot)
    card = link_case(bot, case)
    delivery = bot.user_message("C1", "Tom & Jerry", thread_ts=card["ts"])
    wait_for_reaction(bot, delivery.event["ts"])
    latest = communications(bot, case.case_id)[-1]
    assert latest.body == attributed("A&B <Ops>", thread_key("C1", delivery.event["ts"]), "Tom & Jerry")


def test_a_reply_written_while_the_card_is_still_being_posted_reaches_aws(bot):
    """Slack shows the card (and people reply in its thread) before its answer to chat.postMessage
    reaches the bot; a reply then must wait for the link, not be taken for another thread's message."""
    bot.slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    case = open_case_at_aws(bot)
    answer_card = bot.slack.hold_after_acting("chat.postMessage")
    try:
        bot.command(f"link {case.display_id}")
        [post] = bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None)
        card_ts = post.response["ts"]

        delivery = bot.user_message("C1", "Sent before the bot heard back from Slack", thread_ts=card_ts)
        assert delivery.response.status == 200
    finally:
        answer_card.set()

    [reaction] = wait_for_reaction(bot, delivery.event["ts"])
    assert reaction.params["name"] == "white_check_mark"
    expected = attributed("ana", thread_key("C1", delivery.event["ts"]), "Sent before the bot heard back from Slack")
    assert [c.body for c in communications(bot, case.case_id)].count(expected) == 1


def test_a_reply_whose_work_runs_before_the_card_s_post_ends_waits_for_it(bot):
    """The reply's after-ack work itself runs while Slack's answer to the card's post is still on its
    way: it waits (retries) for the link, rather than failing at once with "not sent"."""
    bot.slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    fast_retries(bot, deadline_seconds=30)
    case = open_case_at_aws(bot)
    answer_card = bot.slack.hold_after_acting("chat.postMessage")
    try:
        bot.command(f"link {case.display_id}")
        [post] = bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None)
        delivery = bot.user_message("C1", "Written while the card was posted", thread_ts=post.response["ts"])
        assert delivery.response.status == 200
        key = thread_key("C1", delivery.event["ts"])
        for _ in range(60):  # 3 s: the reply's work runs meanwhile (after-ack work waits 1 s at most)
            entry = bot.services.cases.journal.get(key)
            if entry is not None and entry.finished:  # failed for good: the defect
                break
            threading.Event().wait(0.05)
    finally:
        answer_card.set()

    [reaction] = wait_for_reaction(bot, delivery.event["ts"])
    assert reaction.params["name"] == "white_check_mark"
    assert sent_texts(bot, case.case_id).count("Written while the card was posted") == 1


def test_a_message_in_another_thread_while_a_card_is_posted_is_let_go(bot):
    bot.slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    older = bot.slack.add_message("C1", "an older conversation", user="U2")
    case = open_case_at_aws(bot)
    answer_card = bot.slack.hold_after_acting("chat.postMessage")
    try:
        bot.command(f"link {case.display_id}")
        bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None)
        chatter = bot.user_message("C1", "unrelated chatter", thread_ts=older["ts"])
        assert chatter.response.status == 200
    finally:
        answer_card.set()

    bot.wait_for_response()
    bot.services.work.wait_idle(timeout=20)
    assert not [c for c in communications(bot, case.case_id) if "unrelated chatter" in c.body]
    assert not bot.slack.calls("reactions.add")
    assert not [c for c in bot.slack.calls("chat.postMessage") if c.params.get("thread_ts") == older["ts"]]


def _card_lands_between_reads(bot, case, answer_card, *, on_call: int):
    """Wraps case_for_thread so that its `on_call`-th look at the card's thread finds no link, and the
    card's post then ends (link recorded, record finished) before the caller's next read: the window
    between "no link yet" and "is a card being posted?"."""
    records = bot.services.cases.replies.records
    real = records.case_for_thread
    calls = {"n": 0}

    def case_for_thread(channel, thread_ts):
        found = real(channel, thread_ts)
        if found is None and channel == "C1":
            calls["n"] += 1
            if calls["n"] == on_call:
                answer_card.set()
                for _ in range(400):
                    if records.link_in(case.case_id, "C1") and not bot.services.cases.card_being_posted(case.case_id):
                        break
                    threading.Event().wait(0.05)
        return found

    records.case_for_thread = case_for_thread
    return records, real


@pytest.mark.parametrize(
    ("on_call", "words"),
    [(1, "Written as the card landed"), (2, "Waited for the card")],
    ids=["while_noted_before_the_ack", "while_its_work_runs"],
)
def test_a_reply_is_not_lost_when_the_card_s_post_ends_between_two_looks(bot, on_call, words):
    """The card's link is recorded (and its record finished) between the reply's look for the link and
    its look for a card being posted, when it is noted before the ack (the first look) or when its
    work runs (the second): it is a case reply all the same, sent, not let go."""
    bot.slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    case = open_case_at_aws(bot)
    answer_card = bot.slack.hold_after_acting("chat.postMessage")
    records, real = None, None
    try:
        bot.command(f"link {case.display_id}")
        [post] = bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None)
        card_ts = post.response["ts"]
        records, real = _card_lands_between_reads(bot, case, answer_card, on_call=on_call)
        delivery = bot.user_message("C1", words, thread_ts=card_ts)
        assert delivery.response.status == 200
        [reaction] = wait_for_reaction(bot, delivery.event["ts"])
    finally:
        answer_card.set()
        if records is not None:
            records.case_for_thread = real
    assert reaction.params["name"] == "white_check_mark"
    expected = attributed("ana", thread_key("C1", delivery.event["ts"]), words)
    assert [c.body for c in communications(bot, case.case_id)].count(expected) == 1


def test_a_linked_card_is_off_the_posting_lists_so_later_messages_read_only_what_still_posts(bot):
    from bot.store.journal import ORDER_PREFIX

    case = open_case_at_aws(bot)
    link_case(bot, case)
    bot.services.work.wait_idle(timeout=10)

    journal = bot.services.store.table("journal")
    for index in ("cards-posting:C1", f"cards-posting-case:{case.case_id}"):
        assert (journal.get(ORDER_PREFIX + index) or {}).get("keys") == []
