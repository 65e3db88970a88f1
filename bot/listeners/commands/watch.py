"""`/aws-support watch [all|high] [<account>|all]` and `unwatch [<account>]`: a channel becomes the home
of new cases, per account it watches (a later watch of the same account replaces its level)."""

from __future__ import annotations

from slack_bolt import Respond
from slack_sdk import WebClient

from bot import render
from bot.errors import UserInputError
from bot.listeners.commands.request import CommandRequest
from bot.services import Services


def watch(services: Services, request: CommandRequest, respond: Respond, client: WebClient) -> None:
    words = [word.lower() for word in request.args[1:]]
    if len(words) > 2:
        raise UserInputError("watch_usage")
    level = words[0] if words else "all"
    account = words[1] if len(words) > 1 else "all"
    if len(words) == 1 and level not in ("all", "high") and services.accounts.get(level) is not None:
        level, account = "all", level  # `watch <account>`: every severity of that account
    if account != "all":
        # Refused by name before anything is recorded: an unknown account, or one not usable here.
        services.accounts.check_usable(request.channel_id, services.accounts.require(account))
    watched, changed = services.watches.watch(request.channel_id, request.user_id, level, account)
    if services.accounts.single:
        text = render.text("watch_started", level=level, account="")
    else:
        text = render.text("watch_now", watched=_described(watched.watched), changed=changed)
    # In the channel: everyone there should know that new cases will start appearing.
    respond(response_type="in_channel", replace_original=False, text=text)


def unwatch(services: Services, request: CommandRequest, respond: Respond, client: WebClient) -> None:
    words = [word.lower() for word in request.args[1:]]
    if len(words) > 1 or (words and services.accounts.single):
        raise UserInputError("watch_usage")
    account = words[0] if words else ""
    if account and account != "all":
        services.accounts.require(account)  # an unknown alias is named, with the served ones
    before, after = services.watches.unwatch(request.channel_id, request.user_id, account)
    if before is None:
        respond(response_type="ephemeral", replace_original=False, text=render.text("watch_not_watching"))
    elif account and account != "all":
        watched = _described(after.watched) if after else []
        text = render.text("watch_stopped_account", account=account, watched=watched)
        respond(response_type="in_channel", replace_original=False, text=text)
    else:
        respond(response_type="in_channel", replace_original=False, text=render.text("watch_stopped"))


def _described(watched: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"account": account, "level": level} for account, level in watched]
