"""`/aws-support digest [schedule <cron> [tz] | off | status]`: parse, check rights, call, answer."""

from __future__ import annotations

from slack_bolt import Respond
from slack_sdk import WebClient

from bot import render
from bot.digest.schedule import Schedule, Schedules
from bot.errors import NotAllowed, UserInputError
from bot.listeners.commands.request import CommandRequest
from bot.services import Services


def digest(services: Services, request: CommandRequest, respond: Respond, client: WebClient) -> None:
    words = request.args[1:]
    action = words[0].lower() if words else ""
    if not action or (action not in SUB_COMMANDS and len(words) == 1 and _names_account(services, action)):
        account = _account_arg(services, request.channel_id, action)
        zone = services.schedules.zone_for(request.channel_id)
        once = f"trigger:{request.trigger_id}" if request.trigger_id else ""
        services.digests.post(request.channel_id, zone=zone, account=account, once=once)
    elif action == "schedule":
        schedule(services, request, respond, words[1:])
    elif action in ("off", "stop", "unschedule"):
        unschedule(services, request, respond)
    elif action == "status":
        status(services, request, respond)
    elif action == "help":
        respond(response_type="ephemeral", replace_original=False, text=render.text("digest_usage"))
    else:
        raise UserInputError("digest_usage")


SUB_COMMANDS = ("schedule", "off", "stop", "unschedule", "status", "help")


def _names_account(services: Services, word: str) -> bool:
    """`all`, a served alias, or (with several accounts) any other word, refused as an unknown account."""
    return word == "all" or services.accounts.get(word) is not None or not services.accounts.single


def _account_arg(services: Services, channel: str, word: str) -> str:
    """The account a digest names ("" the channel's default, an alias, "all"), refused when unknown or
    not usable in this channel (before anything is collected or scheduled)."""
    if not word or services.accounts.single:
        return ""
    services.digests.accounts_for(channel, word.lower())
    return word.lower()


def _require_admin(services: Services, user_id: str) -> None:
    settings = services.settings
    if settings.admins and not settings.is_admin(user_id):
        raise NotAllowed("digest_not_admin")


def schedule(services: Services, request: CommandRequest, respond: Respond, args: list[str]) -> None:
    _require_admin(services, request.user_id)
    if not args:
        raise UserInputError("digest_usage")
    scheduler = services.schedules
    account = ""
    last = args[-1].lower()
    # An optional account after the cron and the time zone: `all` or a served alias (zones hold a "/" or are UTC).
    if len(args) > 5 and (last == "all" or services.accounts.get(last) is not None):
        account = _account_arg(services, request.channel_id, last)
        args = args[:-1]
    saved, replaced = scheduler.set(request.channel_id, args, request.user_id, account=account)
    text = render.text("digest_scheduled", **_described(scheduler, saved), replaced=replaced)
    # Everyone in the channel will get the digests, so everyone sees that they were set up.
    respond(response_type="in_channel", replace_original=False, text=text)


def unschedule(services: Services, request: CommandRequest, respond: Respond) -> None:
    _require_admin(services, request.user_id)
    if services.schedules.remove(request.channel_id):
        respond(response_type="in_channel", replace_original=False, text=render.text("digest_unscheduled"))
    else:
        respond(
            response_type="ephemeral",
            replace_original=False,
            text=render.text("digest_no_schedule", default_zone=services.settings.digest_timezone),
        )


def status(services: Services, request: CommandRequest, respond: Respond) -> None:
    scheduler = services.schedules
    current = scheduler.get(request.channel_id)
    if current is None:
        text = render.text("digest_no_schedule", default_zone=services.settings.digest_timezone)
    else:
        last_posted = current.last_posted_at.astimezone(current.zone) if current.last_posted_at else None
        text = render.text("digest_status", **_described(scheduler, current), last_posted=last_posted)
    respond(response_type="ephemeral", replace_original=False, text=text)


def _described(scheduler: Schedules, schedule: Schedule) -> dict[str, object]:
    """What the scheduled and status answers say of a schedule: its next run and cronsim's reading."""
    next_run = scheduler.next_run(schedule)
    return {
        "s": schedule,
        "next_run": next_run.astimezone(schedule.zone) if next_run else None,
        "explanation": scheduler.explain(schedule),
    }
