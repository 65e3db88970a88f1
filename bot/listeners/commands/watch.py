"""`/aws-support watch [all|high]` and `unwatch`: a channel becomes the home of cases opened outside Slack."""

from __future__ import annotations

from slack_bolt import Respond
from slack_sdk import WebClient

from bot import render
from bot.errors import UserInputError
from bot.listeners.commands.request import CommandRequest
from bot.services import Services


def watch(services: Services, request: CommandRequest, respond: Respond, client: WebClient) -> None:
    if len(request.args) > 2:
        raise UserInputError("watch_usage")
    level = request.args[1] if len(request.args) > 1 else "all"
    watched = services.watches.watch(request.channel_id, request.user_id, level)
    # In the channel: everyone there should know that new cases will start appearing.
    respond(response_type="in_channel", replace_original=False, text=render.text("watch_started", level=watched.level))


def unwatch(services: Services, request: CommandRequest, respond: Respond, client: WebClient) -> None:
    if len(request.args) > 1:
        raise UserInputError("watch_usage")
    previous = services.watches.unwatch(request.channel_id, request.user_id)
    if previous is None:
        respond(response_type="ephemeral", replace_original=False, text=render.text("watch_not_watching"))
        return
    respond(response_type="in_channel", replace_original=False, text=render.text("watch_stopped"))
