"""Events API: a person's reply in a case thread goes to AWS Support."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from slack_bolt import App, BoltContext

from bot.cases.service import SlackFile
from bot.listeners.boundary import guarded
from bot.services import Services

# Subtypes that are a person writing; edits, deletions, joins and bot posts are not sent.
PERSON_SUBTYPES = {None, "file_share", "thread_broadcast"}
INTERNAL_PREFIX = "//"
NOTED = "case_reply_lease"  # the context key of a reply noted before the ack


def is_case_reply(event: dict) -> bool:
    thread_ts = event.get("thread_ts")
    return (
        event.get("subtype") in PERSON_SUBTYPES
        and not event.get("bot_id")
        and bool(event.get("user"))
        and bool(thread_ts)
        and thread_ts != event.get("ts")
        and not (event.get("text") or "").lstrip().startswith(INTERNAL_PREFIX)
    )


def thread_message(event: dict, context: BoltContext) -> None:
    """After the ack: send the reply noted before it (nothing when it was a redelivery); a reply in
    the thread of a card no longer linked is answered, not dropped in silence."""
    services: Services = context["services"]
    lease = context.get(NOTED)
    if lease is not None:
        services.cases.start(lease)
    elif is_case_reply(event):
        # Behind requests, as all work after an ack: most such threads are no case's, and cost one read.
        channel, thread_ts, user = event["channel"], event["thread_ts"], event["user"]

        def answer(text: str) -> None:  # the check itself failed (the store away): said to the writer
            services.cases.messages.tell(channel, user, text, thread_ts=thread_ts)

        explain = partial(
            services.cases.explain_unlinked_thread,
            channel=channel,
            thread_ts=thread_ts,
            message_ts=event["ts"],
            user=user,
        )
        # Once-only by its own claim (explain_unlinked_thread), as a journal record is by its key.
        services.work.submit(guarded("note for a reply in an unlinked thread", answer, explain, noted=True))


def note_case_reply(body: dict, context: BoltContext, next: Callable[[], None]) -> None:  # noqa: A002
    """Runs before Bolt acks the event: a case reply is in the journal before Slack stops retrying.

    Keyed by the message's channel and ts, so a redelivered event (same message) finds it noted.
    """
    event = body.get("event") if body.get("type") == "event_callback" else None
    if event and event.get("type") == "message" and is_case_reply(event):
        services: Services = context["services"]
        context[NOTED] = services.cases.note_thread_reply(
            channel=event["channel"],
            thread_ts=event["thread_ts"],
            message_ts=event["ts"],
            user=event["user"],
            text=event.get("text") or "",
            files=[SlackFile.from_payload(f) for f in event.get("files") or []],
        )
    next()


def register(app: App) -> None:
    # The listener's own middleware runs before Bolt acks the event, on message events only: other
    # requests (slash commands above all) do not pay for it before their ack.
    app.event("message", middleware=[note_case_reply])(thread_message)
