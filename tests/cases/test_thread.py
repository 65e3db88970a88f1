"""Thread to case: a person's reply in the card's thread goes to AWS once, attributed, confirmed."""

from __future__ import annotations

from dataclasses import asdict

from bot.cases.service import MAX_BODY, PendingReply, outbound_key
from tests.cases.helpers import communications, link_case, open_case_at_aws
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
    assert latest.body == "ana via Slack: Here is the status page (https://status.example.com) & logs"
    assert outbound_key(case.case_id, latest.body) in bot.services.store.table("outbound")


def test_redelivered_event_adds_the_communication_once(bot):
    case, card = linked(bot)
    before = len(communications(bot, case.case_id))
    delivery = bot.user_message("C1", "only once please", thread_ts=card["ts"])
    wait_for_reaction(bot, delivery.event["ts"])
    assert bot.redeliver(delivery, retry_num=1).status == 200
    assert bot.redeliver(delivery, retry_num=2).status == 200
    bot.services.work.wait_idle(timeout=10)
    assert [c.body for c in communications(bot, case.case_id)[before:]] == ["ana via Slack: only once please"]
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
    assert communications(bot, case.case_id)[-1].body == "ana via Slack: the real reply"


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
    sent = [c.body for c in communications(bot, case.case_id) if c.body.startswith("ana via Slack: (")]
    assert len(sent) >= 2 and all(len(body) <= MAX_BODY for body in sent)
    assert " ".join(body.split(") ", 1)[1] for body in sent).split() == words


def test_a_failed_reply_is_reported_in_the_thread(bot):
    case, card = linked(bot)
    bot.sandbox.inject_fault(operation="AddCommunicationToCase", code="InternalServerError", count=10)
    delivery = bot.user_message("C1", "will this arrive?", thread_ts=card["ts"])
    [report] = bot.slack.wait_for(
        "chat.postMessage",
        lambda c: c.params.get("thread_ts") == card["ts"] and "not* sent" in c.params.get("text", ""),
        timeout=20,
    )
    assert "internal error" in report.params["text"]
    assert "<@U1>" in report.params["text"]
    assert not bot.slack.calls("reactions.add", lambda c: c.params["timestamp"] == delivery.event["ts"])


def test_replies_in_one_thread_reach_aws_in_the_order_written(bot):
    case, card = linked(bot)
    deliveries = [bot.user_message("C1", f"message {i}", thread_ts=card["ts"]) for i in range(5)]
    for delivery in deliveries:
        wait_for_reaction(bot, delivery.event["ts"])
    bodies = [c.body for c in communications(bot, case.case_id)][-5:]
    assert bodies == [f"ana via Slack: message {i}" for i in range(5)]


def test_a_reply_half_sent_when_the_bot_died_is_finished_once_after_restart(bot_factory):
    first = bot_factory()
    first.slack.add_user("U1", real_name="Ana", display_name="ana")
    case, card = linked(first)
    store = first.services.store
    # What a kill -9 leaves: the intent recorded, part 1 of 2 already accepted by AWS, part 2 not.
    bodies = ["ana via Slack: (1/2) first half", "ana via Slack: (2/2) second half"]
    first.services.gateway.add_communication(case.case_id, bodies[0])
    pending = PendingReply(
        case_id=case.case_id,
        channel="C1",
        thread_ts=card["ts"],
        message_ts="1700000000.000100",
        user="U1",
        bodies=bodies,
        prefix="ana via Slack: ",
    )
    store.table("events").put("msg:C1:1700000000.000100", asdict(pending))
    db_path = first.db_path
    first.stop()

    second = bot_factory(db_path=db_path)
    assert second.services.cases.resume_pending() == 1
    sent = [c.body for c in communications(second, case.case_id) if "half" in c.body]
    assert sent == bodies
    assert second.services.store.table("events").get("msg:C1:1700000000.000100")["state"] == "sent"
    assert second.services.cases.resume_pending() == 0


def test_a_card_posted_just_before_a_crash_is_adopted_not_posted_twice(bot_factory):
    first = bot_factory()
    case = open_case_at_aws(first)
    # What a kill -9 leaves between chat.postMessage and the link: the intent, and the card in Slack.
    first.services.store.table("events").put(
        f"card:{case.case_id}|C1", {"state": "posting", "case_id": case.case_id, "channel": "C1", "linked_by": "U1"}
    )
    posted = first.services.slack.chat_postMessage(
        channel="C1",
        text="card",
        metadata={"event_type": "aws_support_case", "event_payload": {"case_id": case.case_id}},
    )
    db_path = first.db_path
    first.stop()

    second = bot_factory(db_path=db_path)
    assert second.services.cases.resume_pending() == 1
    link = second.services.cases.link_in(case.case_id, "C1")
    assert link is not None and link.card_ts == posted["ts"]
    assert second.services.cases.case_for_thread("C1", posted["ts"]) == case.case_id
    assert len(second.slack.calls("chat.postMessage")) == 1  # only the one made before the crash
    assert second.services.cases.resume_pending() == 0


def test_a_card_lost_in_a_crash_is_posted_after_restart(bot_factory):
    first = bot_factory()
    case = open_case_at_aws(first)
    first.services.store.table("events").put(
        f"card:{case.case_id}|C1", {"state": "posting", "case_id": case.case_id, "channel": "C1", "linked_by": "U1"}
    )
    db_path = first.db_path
    first.stop()

    second = bot_factory(db_path=db_path)
    assert second.services.cases.resume_pending() == 1
    [post] = second.slack.calls("chat.postMessage")
    assert second.services.cases.link_in(case.case_id, "C1").card_ts == post.response["ts"]


def test_a_thread_reply_is_in_the_store_before_slack_gets_its_ack(bot):
    case, card = linked(bot)
    delivery = bot.user_message("C1", "noted first", thread_ts=card["ts"])
    assert delivery.response.status == 200
    # Checked right after the 200, whatever the after-ack work has done by now.
    record = bot.services.store.table("events").get(f"msg:C1:{delivery.event['ts']}")
    assert record is not None and record["state"] in ("received", "sending", "sent")
    wait_for_reaction(bot, delivery.event["ts"])


def test_replies_acked_but_not_started_before_a_crash_are_sent_after_restart(bot_factory):
    first = bot_factory()
    first.slack.add_user("U1", real_name="Ana", display_name="ana")
    case, card = linked(first)
    # What a kill -9 right after the acks leaves: two noted replies, nothing sent yet.
    assert first.services.cases.receive_thread_reply(
        channel="C1", thread_ts=card["ts"], message_ts="1700000001.000100", user="U1", text="from the thread", files=[]
    )
    first.services.cases.receive_command_reply(case.display_id, "from the command", user="U1", channel="C1")
    db_path = first.db_path
    first.stop()

    second = bot_factory(db_path=db_path)
    assert second.services.cases.resume_pending() == 2
    bodies = [c.body for c in communications(second, case.case_id)]
    assert bodies.count("ana via Slack: from the thread") == 1
    assert bodies.count("ana via Slack: from the command") == 1
    assert second.services.cases.resume_pending() == 0


def test_one_broken_record_does_not_stop_the_others_from_being_resumed(bot_factory):
    first = bot_factory()
    first.slack.add_user("U1", real_name="Ana", display_name="ana")
    case, card = linked(first)
    events = first.services.store.table("events")
    events.put("msg:C1:1.000001", {"state": "sending", "broken": "not a reply record"})
    first.services.cases.receive_thread_reply(
        channel="C1", thread_ts=card["ts"], message_ts="1700000002.000100", user="U1", text="still sent", files=[]
    )
    db_path = first.db_path
    first.stop()

    second = bot_factory(db_path=db_path)
    second.services.cases.resume_pending()
    assert "ana via Slack: still sent" in [c.body for c in communications(second, case.case_id)]
