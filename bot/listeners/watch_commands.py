"""`/aws-support watch|unwatch` (owned by the case poller work)."""

from __future__ import annotations

from slack_bolt import Respond
from slack_sdk import WebClient

from bot.errors import BotError
from bot.listeners.commands import CommandRequest
from bot.services import Services


def watch(services: Services, request: CommandRequest, respond: Respond, client: WebClient) -> None:
    raise BotError("not_yet_available", feature="watch")


def unwatch(services: Services, request: CommandRequest, respond: Respond, client: WebClient) -> None:
    raise BotError("not_yet_available", feature="unwatch")
