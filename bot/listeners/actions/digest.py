"""The digest's buttons: Refresh checks, Details of a flagged check, and the console link."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot import render
from bot.listeners.boundary import guarded
from bot.services import Services


@dataclass(frozen=True)
class Clicked:
    """Where a digest button was clicked: the digest's channel and thread, and who clicked."""

    channel: str
    thread_ts: str
    user: str
    value: str

    @classmethod
    def from_body(cls, body: dict[str, Any], action: dict[str, Any]) -> Clicked:
        message = body.get("message") or {}
        container = body.get("container") or {}
        return cls(
            channel=(body.get("channel") or {}).get("id") or container.get("channel_id", ""),
            # A digest posted in a thread (a refresh follow-up) keeps its answers in that thread.
            thread_ts=message.get("thread_ts") or message.get("ts") or container.get("message_ts", ""),
            user=(body.get("user") or {}).get("id", ""),
            value=str(action.get("value") or ""),
        )


def _after_ack(services: Services, respond: Respond, name: str, key: str, work: Callable[[], None]) -> None:
    """Run `work` after Bolt's answer (its AWS calls can take seconds); clicks on the same
    digest run in order, so a double click finds the first refresh already recorded. Known failures
    become a message a person can act on; the unknown are logged here."""

    def answer(text: str) -> None:
        respond(response_type="ephemeral", replace_original=False, text=text)

    services.work.submit(guarded(f"digest button {name}", answer, work), key=key)


def refresh(ack: Ack, body: dict, action: dict, respond: Respond, context: BoltContext) -> None:
    ack()
    services: Services = context["services"]
    clicked = Clicked.from_body(body, action)

    def work() -> None:
        # The digest's account ("refresh:<alias>" or "refresh:all"; a digest posted before several
        # accounts says "refresh": the channel's default). The refresher refuses one not usable here.
        account = clicked.value.partition(":")[2].strip().lower()
        outcome = services.refresher.refresh(clicked.channel, clicked.thread_ts, clicked.user, account=account)
        services.schedules.wake()  # the worker follows the refresh to its follow-up
        wait = outcome.next_refreshable_in
        zone = services.schedules.zone_for(clicked.channel)
        next_refreshable = (services.digests.clock() + wait).astimezone(zone) if wait else None
        if outcome.already_pending:
            key = "digest_refresh_pending"
        elif outcome.followed:
            key = "digest_refresh_started"
        else:
            key = "digest_refresh_nothing"
        text = render.text(key, o=outcome, next_refreshable=next_refreshable)
        if outcome.unreachable:
            accounts = [{"alias": a, "id": i, "code": c} for a, i, c in outcome.unreachable]
            text = render.Mrkdwn(text + "\n" + render.text("digest_refresh_unreachable", accounts=accounts))
        respond(response_type="ephemeral", replace_original=False, text=text)

    _after_ack(services, respond, "refresh", f"digest:{clicked.channel}:{clicked.thread_ts}", work)


def details(ack: Ack, body: dict, action: dict, respond: Respond, context: BoltContext) -> None:
    ack()
    services: Services = context["services"]
    clicked = Clicked.from_body(body, action)
    _after_ack(
        services,
        respond,
        "details",
        f"digest:{clicked.channel}:{clicked.thread_ts}:{clicked.value}",
        lambda: services.digests.details(clicked.channel, clicked.thread_ts, clicked.value),
    )


def console_link(ack: Ack) -> None:
    # A link button opens the console in the browser; Slack still sends the click and wants an ack.
    ack()


def register(app: App) -> None:
    app.action("digest_refresh")(refresh)
    app.action("digest_details")(details)
    app.action("digest_console")(console_link)
