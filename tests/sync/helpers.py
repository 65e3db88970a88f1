"""Shared steps of the poller tests: a case at AWS linked to a thread, and what that thread shows."""

from __future__ import annotations

from typing import Any

from bot.domain import Case, NewCase
from bot.sync.poster import EVENT_COMMUNICATION, EVENT_STATUS, ChannelPacer
from tests.support.blocks import texts_in
from tests.support.slack_requests import button_action

SERVICE = "amazon-elastic-compute-cloud-linux"
CATEGORY = "general-guidance"


def open_case(bot: Any, subject: str = "Instance unreachable", severity: str = "high") -> Case:
    """A case opened outside Slack (the console), straight through the gateway."""
    case_id = bot.services.gateway.create_case(NewCase(subject, SERVICE, CATEGORY, severity, "It stopped answering."))
    return bot.services.gateway.get_case(case_id)


def linked_case(bot: Any, channel: str = "C1", *, fast: bool = True) -> tuple[Case, str]:
    """A console case whose card is in `channel`, seen once by the poller; returns (case, thread_ts)."""
    if fast:
        # Slack's one message per second per channel is the pacer's job; most tests need not wait for it.
        bot.services.sync.poster.pacer = ChannelPacer(per_second=100, burst=100)
    case = open_case(bot)
    link = bot.services.cases.post_card(case, channel, linked_by="U1")
    bot.services.sync.run_cycle()
    return case, link.thread_ts


def click_card_button(bot: Any, channel: str, card_ts: str, action_id: str, user: str = "U1") -> None:
    """A person clicks a button of the case card at `card_ts` (the card as Slack stores it now)."""
    card = bot.slack.message(channel, card_ts)
    [button] = [
        e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == action_id
    ]
    response = bot.requests.block_actions(
        button_action(action_id, button["value"], block_id="case_actions"),
        user_id=user,
        channel_id=channel,
        message=card,
    )
    assert response.status == 200


def replies(bot: Any, channel: str, thread_ts: str) -> list[dict[str, Any]]:
    """The thread as Slack stores it, without its parent (the card)."""
    return [m for m in bot.slack.messages(channel, thread_ts) if m["ts"] != thread_ts]


def payload(message: dict[str, Any]) -> dict[str, Any]:
    return (message.get("metadata") or {}).get("event_payload") or {}


def communication_messages(bot: Any, channel: str, thread_ts: str) -> list[dict[str, Any]]:
    return [
        m
        for m in replies(bot, channel, thread_ts)
        if (m.get("metadata") or {}).get("event_type") == EVENT_COMMUNICATION
    ]


def status_messages(bot: Any, channel: str, thread_ts: str) -> list[dict[str, Any]]:
    return [m for m in replies(bot, channel, thread_ts) if (m.get("metadata") or {}).get("event_type") == EVENT_STATUS]


def shown_text(message: dict[str, Any]) -> str:
    """The section texts of a message, as a person reads them (Slack's &amp; &lt; &gt; undone)."""
    texts = [b["text"]["text"] for b in message.get("blocks") or [] if b.get("type") == "section"]
    joined = "\n".join(texts)
    return joined.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def texts(bot: Any, thread: str, channel: str = "C1") -> list[str]:
    """What the case's communications in a thread say, in order."""
    return [shown_text(m) for m in communication_messages(bot, channel, thread)]


def all_text(message: dict[str, Any]) -> str:
    """Every text of a message (blocks and fallback), raw mrkdwn, for checks on escaping."""
    return "\n".join([message.get("text") or "", *texts_in(message.get("blocks") or [])])


def resolved_card_on_two_replicas(bot_factory: Any, pg_url: str, fake_slack: Any) -> tuple[Any, Any, Case, str]:
    """(holder, other, case, thread): two bots on one PostgreSQL database, `other` with a sync owner of its
    own; a case resolved at AWS, its card in C1 (linked to answer it), never synced yet."""
    from tests.review30.replicas import as_another_replica

    holder = bot_factory(env={"DATABASE_URL": pg_url})
    other = bot_factory(env={"DATABASE_URL": pg_url})
    as_another_replica(other)
    fake_slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    holder.services.sync.poster.pacer = ChannelPacer(per_second=100, burst=100)
    case = open_case(holder)
    holder.services.gateway.resolve_case(case.case_id)
    thread = holder.services.cases.post_card(holder.services.gateway.get_case(case.case_id), "C1", linked_by="U1")
    return holder, other, case, thread.thread_ts


def assert_answer_seen_next_cycle(bot: Any, case: Case, thread: str) -> None:
    """AWS answers the reopened case: the next cycle looks at it and posts the answer in the thread."""
    import time

    bot.sandbox.add_aws_reply(case.case_id, "we looked again: the disk is full")
    bot.services.sync.run_cycle()
    shown = [shown_text(m) for m in communication_messages(bot, "C1", thread)]
    assert "we looked again: the disk is full" in shown, (
        "not looked at: next_check_at in",
        bot.services.sync.state(case.case_id).next_check_at - time.time(),
    )


def times_described(bot: Any, case: Case, cycles: int) -> int:
    """In how many of `cycles` poll cycles, run now, the poller asked AWS for the case."""
    sync = bot.services.sync
    describe = sync.gateway.describe_cases
    described: list[list[str]] = []

    def counting(ids: Any, *args: Any, **kwargs: Any) -> Any:
        described.append(list(ids))
        return describe(ids, *args, **kwargs)

    sync.gateway.describe_cases = counting
    try:
        for _ in range(cycles):
            sync.run_cycle()
    finally:
        del sync.gateway.describe_cases
    return sum(case.case_id in ids for ids in described)
