"""`/aws-support watch [all|high]`: a channel gets a card, and a followed thread, for each new case opened elsewhere."""

from __future__ import annotations

import threading
from datetime import timedelta

from bot.domain import NewCase
from bot.sync.poster import ChannelPacer
from tests.cases.helpers import card_text
from tests.support.harness import ADMIN
from tests.sync.helpers import CATEGORY, SERVICE, communication_messages, linked_case, open_case, shown_text


def watching(bot, level="", channel="C9"):
    # New cases are carded once they are a few seconds old (a case opened from Slack is recorded by
    # then); the tests need not wait for that, nor for Slack's pace.
    bot.services.watches.grace = timedelta(0)
    bot.services.sync.poster.pacer = ChannelPacer(per_second=100, burst=100)
    bot.command(f"watch {level}".strip(), user=ADMIN, channel=channel)
    return bot.wait_for_response()


def cards(bot, channel):
    return [m for m in bot.slack.messages(channel) if m.get("blocks") and m.get("thread_ts", m["ts"]) == m["ts"]]


def test_only_admins_may_watch_or_unwatch(bot):
    bot.command("watch", user="U1", channel="C9")
    answer = bot.wait_for_response()
    assert answer.get("response_type", "ephemeral") == "ephemeral" and "admins" in answer["text"]
    bot.command("unwatch", user="U1", channel="C9")
    assert "admins" in bot.wait_for_response()["text"]
    assert bot.services.watches.all() == []


def test_a_bad_level_gets_the_usage(bot):
    bot.command("watch everything", user=ADMIN, channel="C9")
    assert "/aws-support watch [all|high]" in bot.wait_for_response()["text"]


def test_watch_high_cards_new_high_cases_opened_elsewhere_and_follows_them(bot):
    before = open_case(bot, "opened before the watch")
    answer = watching(bot, "high")
    assert answer["response_type"] == "in_channel" and "high, urgent or critical" in answer["text"]
    high = open_case(bot, "Database down", severity="urgent")
    open_case(bot, "Question about billing", severity="low")
    from_slack = bot.services.cases.open_case(
        NewCase("Opened from Slack", SERVICE, CATEGORY, "critical", "from the modal"), [], opened_by="U1", channel="C1"
    )[0]

    bot.services.poller.run_cycle()
    bot.services.poller.run_cycle()

    [card] = cards(bot, "C9")
    assert "Database down" in card_text(card)
    assert before.case_id not in card_text(card) and from_slack.case_id not in str(card)
    # A watched case's thread tells the whole story, starting with how it was opened.
    assert [shown_text(m) for m in communication_messages(bot, "C9", card["ts"])] == ["It stopped answering."]

    bot.sandbox.add_aws_reply(high.case_id, "Restoring from the latest snapshot.")
    bot.services.poller.run_cycle()
    assert [shown_text(m) for m in communication_messages(bot, "C9", card["ts"])] == [
        "It stopped answering.",
        "Restoring from the latest snapshot.",
    ]
    assert len(cards(bot, "C9")) == 1


def test_unwatch_stops_new_cards_and_keeps_the_cases_followed(bot):
    watching(bot)  # all severities
    first = open_case(bot, "Low one", severity="low")
    bot.services.poller.run_cycle()
    [card] = cards(bot, "C9")

    bot.command("unwatch", user=ADMIN, channel="C9")
    assert bot.wait_for_response()["response_type"] == "in_channel"
    open_case(bot, "After the unwatch")
    bot.sandbox.add_aws_reply(first.case_id, "still followed")
    bot.services.poller.run_cycle()

    assert len(cards(bot, "C9")) == 1
    assert shown_text(communication_messages(bot, "C9", card["ts"])[-1]) == "still followed"
    bot.command("unwatch", user=ADMIN, channel="C9")
    assert "was not watching" in bot.wait_for_response()["text"]


def test_a_card_left_without_its_link_by_a_crash_is_replaced_not_doubled(bot):
    watching(bot)
    case = open_case(bot, "Carded when the bot died")
    # The state a kill -9 leaves between chat.postMessage and the link's write: intent, card, no link.
    bot.services.watches._set_carded("C9", case, "posting")  # what it writes right before posting a card
    orphan = bot.services.cases.post_card(case, "C9", linked_by=ADMIN)
    bot.services.store.table("links").delete(f"{case.case_id}|C9")
    bot.services.store.table("threads").delete(f"C9|{orphan.card_ts}")

    bot.services.poller.run_cycle()
    bot.services.poller.run_cycle()

    [card] = cards(bot, "C9")
    assert card["ts"] != orphan.card_ts
    assert bot.services.cases.link_in(case.case_id, "C9").card_ts == card["ts"]


def test_a_cycle_while_a_watched_cases_card_is_being_posted_keeps_the_whole_history(bot):
    # The watch writes the case's state (its thread gets the whole case) before the card and its link;
    # a cycle in between sees a state with no link. Forgetting it there lost the opening message.
    watching(bot)
    case = open_case(bot, "Carded while a cycle runs")
    card_posted = bot.slack.hold_after_acting("chat.postMessage")
    carding = threading.Thread(target=bot.services.watches.card_new_cases)
    carding.start()
    bot.slack.wait_for("chat.postMessage", lambda call: call.params.get("channel") == "C9")

    bot.services.sync.run_cycle()
    card_posted.set()
    carding.join(timeout=30)
    bot.services.sync.run_cycle()

    [card] = cards(bot, "C9")
    assert case.case_id in str(card)
    assert [shown_text(m) for m in communication_messages(bot, "C9", card["ts"])] == ["It stopped answering."]


def test_the_state_of_a_case_no_longer_linked_is_forgotten_once_it_has_stayed_unlinked(bot):
    case, _ = linked_case(bot, "C1")
    bot.services.cases.records.delete_link(bot.services.cases.link_in(case.case_id, "C1"))

    bot.services.sync.run_cycle()
    assert bot.services.sync.states.get(case.case_id) is not None  # a card's post may be on its way

    bot.services.sync.forget_unfollowed_after = 0.0
    bot.services.sync.run_cycle()
    assert bot.services.sync.states.get(case.case_id) is None
