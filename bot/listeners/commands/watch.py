"""`/aws-support watch [all|high] [<account>|all]` and `unwatch`: a channel becomes the home of new cases."""

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
    watched = services.watches.watch(request.channel_id, request.user_id, level, account)
    named = "" if services.accounts.single else watched.account
    # In the channel: everyone there should know that new cases will start appearing.
    text = render.text("watch_started", level=watched.level, account=named)
    respond(response_type="in_channel", replace_original=False, text=text)


def unwatch(services: Services, request: CommandRequest, respond: Respond, client: WebClient) -> None:
    if len(request.args) > 1:
        raise UserInputError("watch_usage")
    previous = services.watches.unwatch(request.channel_id, request.user_id)
    if previous is None:
        respond(response_type="ephemeral", replace_original=False, text=render.text("watch_not_watching"))
        return
    respond(response_type="in_channel", replace_original=False, text=render.text("watch_stopped"))
