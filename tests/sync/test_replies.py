"""AWS -> thread: each new communication from AWS appears in the linked thread once, in order, escaped."""

from __future__ import annotations

import re

from bot.cases.service import outbound_key
from bot.domain import NewCase
from bot.sync.poster import ChannelPacer
from tests.sync.helpers import (
    CATEGORY,
    SERVICE,
    all_text,
    communication_messages,
    linked_case,
    open_case,
    payload,
    replies,
    shown_text,
)


def test_an_aws_reply_appears_in_the_thread_once(bot):
    case, thread = linked_case(bot)
    assert replies(bot, "C1", thread) == []  # the opening communication is the card's, not news

    reply = bot.sandbox.add_aws_reply(case.case_id, "Hello, we are looking into your instance.")
    report = bot.services.sync.run_cycle()
    bot.services.sync.run_cycle()
    bot.services.sync.run_cycle()

    [message] = communication_messages(bot, "C1", thread)
    assert shown_text(message) == "Hello, we are looking into your instance."
    assert "Amazon Web Services" in all_text(message)  # the author
    assert payload(message)["case_id"] == case.case_id
    assert report.posted >= 1
    assert reply["body"] in message["text"]  # the notification fallback says it too
    assert len(bot.slack.calls("chat.postMessage", lambda c: c.params.get("thread_ts") == thread)) == 2  # + status


def test_five_replies_arrive_in_order(bot):
    case, thread = linked_case(bot)
    for i in range(1, 6):
        bot.sandbox.add_aws_reply(case.case_id, f"answer {i}")
    bot.services.sync.run_cycle()

    assert [shown_text(m) for m in communication_messages(bot, "C1", thread)] == [f"answer {i}" for i in range(1, 6)]


def test_up_to_four_new_replies_need_no_describe_communications(bot):
    case, thread = linked_case(bot)
    for i in range(1, 5):
        bot.sandbox.add_aws_reply(case.case_id, f"answer {i}")
    bot.services.sync.run_cycle()

    assert [shown_text(m) for m in communication_messages(bot, "C1", thread)] == [f"answer {i}" for i in range(1, 5)]
    # The oldest of the five recent communications was already known: DescribeCases said it all.
    assert bot.sandbox.calls["DescribeCommunications"] == 0


def test_more_than_five_new_replies_in_one_cycle_are_all_posted(bot):
    case, thread = linked_case(bot)
    for i in range(1, 9):
        bot.sandbox.add_aws_reply(case.case_id, f"answer {i}")
    bot.services.sync.run_cycle()
    bot.services.sync.run_cycle()

    assert [shown_text(m) for m in communication_messages(bot, "C1", thread)] == [f"answer {i}" for i in range(1, 9)]
    assert bot.sandbox.calls["DescribeCommunications"] == 1  # only for the case with more than five new


def test_a_quiet_cycle_costs_one_call_per_hundred_cases(bot):
    cases = [open_case(bot, f"case {i}") for i in range(3)]
    for case in cases:
        bot.services.cases.post_card(case, "C1", linked_by="U1")
    bot.services.sync.run_cycle()
    before = bot.services.gateway.calls
    report = bot.services.sync.run_cycle()
    assert bot.services.gateway.calls - before == 1
    assert (report.followed, report.checked, report.posted) == (3, 3, 0)


def test_a_communication_sent_from_slack_is_not_echoed(bot):
    case, thread = linked_case(bot)
    bot.slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    delivery = bot.user_message("C1", "the instance is i-0abc", thread_ts=thread)
    bot.slack.wait_for("reactions.add", lambda c: c.params["timestamp"] == delivery.event["ts"])
    sent = bot.services.gateway.communications(case.case_id)[-1]
    assert outbound_key(case.case_id, sent.body) in bot.services.store.table("outbound")
    bot.sandbox.add_aws_reply(case.case_id, "Thanks, found it.")

    bot.services.sync.run_cycle()

    assert [shown_text(m) for m in communication_messages(bot, "C1", thread)] == ["Thanks, found it."]


def test_aws_text_cannot_mention_broadcast_or_disguise_links(bot):
    case, thread = linked_case(bot)
    evil = (
        "Hi @channel and @here, <!channel> <!here|here> <!everyone> <@U0ADMIN> <#C0SECRET> "
        "see <https://evil.example/phish|https://console.aws.amazon.com> & <mailto:a@b.c|support>"
    )
    bot.sandbox.add_aws_reply(case.case_id, evil, submitted_by="<@U0ADMIN> @channel")
    bot.services.sync.run_cycle()

    [message] = communication_messages(bot, "C1", thread)
    raw = re.sub(r"<!date\^[^>]*>", "", all_text(message))  # the bot's own date token, not AWS text
    # Slack parses <...> as mentions and links, and bare @channel/@here as broadcasts: none may survive.
    assert not re.search(r"<[@#!]|<https?:|<mailto:", raw)
    assert not re.search(r"@(channel|here|everyone)\b", raw)
    assert "&lt;https://evil.example/phish|https://console.aws.amazon.com&gt;" in raw
    assert shown_text(message).replace("\u2060", "") == evil  # shown as written, nothing lost
    [post] = bot.slack.calls("chat.postMessage", lambda c: c.response.get("ts") == message["ts"])
    assert str(post.params.get("unfurl_links")).lower() in ("false", "0")  # no preview of AWS's URLs


def test_a_long_body_is_split_within_block_kit_limits_and_kept_whole(bot):
    case, thread = linked_case(bot)
    body = "\n".join(f"line {i}: <tag> & @here " + "x" * 60 for i in range(400))  # ~40,000 characters
    bot.sandbox.add_aws_reply(case.case_id, body)
    bot.services.sync.run_cycle()

    messages = communication_messages(bot, "C1", thread)
    assert len(messages) > 1
    assert [payload(m)["part"] for m in messages] == list(range(len(messages)))
    for message in messages:
        assert len(message["blocks"]) <= 50
        assert all(len(b["text"]["text"]) <= 3000 for b in message["blocks"] if b["type"] == "section")
        assert len(message["text"]) <= 40000
    shown = "\n".join(shown_text(m) for m in messages).replace("\u2060", "")
    assert shown.split() == body.split()


def test_attachments_are_listed_and_posted_as_files_in_the_thread(bot):
    case, thread = linked_case(bot)
    bot.sandbox.add_aws_reply(
        case.case_id, "Logs attached.", attachments=[("trace.log", b"line 1\nline 2\n"), ("<b>@here.txt", b"x")]
    )
    bot.services.sync.run_cycle()

    [message] = communication_messages(bot, "C1", thread)
    assert "trace.log" in all_text(message) and "&lt;b&gt;@\u2060here.txt" in all_text(message)
    uploads = bot.slack.calls("files.completeUploadExternal")
    assert [u.params["thread_ts"] for u in uploads] == [thread, thread]
    shared = [m for m in replies(bot, "C1", thread) if m.get("files")]
    assert [m["files"][0]["name"] for m in shared] == ["trace.log", "<b>@here.txt"]
    assert bot.slack.file_bytes(shared[0]["files"][0]["id"]) == b"line 1\nline 2\n"
    # The files come right after their message, before anything newer.
    order = [m["ts"] for m in replies(bot, "C1", thread)]
    assert order.index(message["ts"]) < order.index(shared[0]["ts"]) < order.index(shared[1]["ts"])


def test_a_case_linked_in_two_channels_gets_each_reply_in_both_threads(bot):
    case, thread = linked_case(bot)
    second = bot.services.cases.post_card(case, "C2", linked_by="U2")
    bot.sandbox.add_aws_reply(case.case_id, "one answer")
    bot.services.sync.run_cycle()
    assert [shown_text(m) for m in communication_messages(bot, "C1", thread)] == ["one answer"]
    assert [shown_text(m) for m in communication_messages(bot, "C2", second.thread_ts)] == ["one answer"]


def test_the_sandbox_engineers_answer_appears_in_the_thread_within_one_interval(bot):
    bot.sandbox.set_reply_delay(0.2)  # the emulated engineer answers on his own, as with --sandbox
    bot.services.sync.poster.pacer = ChannelPacer(per_second=100, burst=100)
    case, link, _ = bot.services.cases.open_case(
        NewCase("Opened from Slack", SERVICE, CATEGORY, "high", "please help"), [], opened_by="U1", channel="C1"
    )
    bot.start_workers()  # POLL_INTERVAL_SECONDS=1

    [post] = bot.slack.wait_for(
        "chat.postMessage",
        lambda c: c.params.get("thread_ts") == link.thread_ts and c.params.get("blocks") is not None,
        timeout=5,
    )
    answer = bot.services.gateway.communications(case.case_id)[-1]
    assert answer.submitted_by == "Amazon Web Services"
    assert [shown_text(m) for m in communication_messages(bot, "C1", link.thread_ts)] == [answer.body.strip("\n")]


def test_the_sync_state_of_a_long_case_stays_small(bot):
    case, thread = linked_case(bot)
    for i in range(1, 13):
        bot.sandbox.add_aws_reply(case.case_id, f"answer {i}")
        bot.sandbox.advance_clock(120)  # two minutes between answers, as AWS's times say
        bot.services.sync.run_cycle()

    assert len(communication_messages(bot, "C1", thread)) == 12
    state = bot.services.sync.state(case.case_id)
    # Only the keys of the last ten minutes are kept: older ones can never count as new again.
    assert 1 <= len(state.seen) <= 6 and state.pending == []
    bot.services.sync.run_cycle()
    assert len(communication_messages(bot, "C1", thread)) == 12
