"""Events API: a person's reply in a case thread goes to AWS Support."""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import App, BoltContext

from bot.cases.service import SlackFile
from bot.services import Services

# Subtypes that are a person writing; edits, deletions, joins and bot posts are not sent.
PERSON_SUBTYPES = {None, "file_share", "thread_broadcast"}
INTERNAL_PREFIX = "//"


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
    if not is_case_reply(event):
        return
    services: Services = context["services"]
    files = [SlackFile.from_payload(f) for f in event.get("files") or []]

    def deliver() -> None:
        services.cases.reply_from_thread(
            channel=event["channel"],
            thread_ts=event["thread_ts"],
            message_ts=event["ts"],
            user=event["user"],
            text=event.get("text") or "",
            files=files,
        )

    # One queue per thread: replies reach AWS in the order they were written.
    services.work.submit(deliver, key=f"{event['channel']}|{event['thread_ts']}")


def note_case_reply(body: dict, context: BoltContext, next: Callable[[], None]) -> None:  # noqa: A002
    """Runs before Bolt acks the event: a case reply is in the store before Slack stops retrying."""
    event = body.get("event") if body.get("type") == "event_callback" else None
    if event and event.get("type") == "message" and is_case_reply(event):
        services: Services = context["services"]
        services.cases.receive_thread_reply(
            channel=event["channel"],
            thread_ts=event["thread_ts"],
            message_ts=event["ts"],
            user=event["user"],
            text=event.get("text") or "",
            files=[SlackFile.from_payload(f) for f in event.get("files") or []],
        )
    next()


def register(app: App) -> None:
    app.middleware(note_case_reply)
    app.event("message")(thread_message)
