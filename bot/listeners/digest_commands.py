"""`/aws-support digest …` (owned by the Trusted Advisor digest work)."""

from __future__ import annotations

from slack_bolt import Respond
from slack_sdk import WebClient

from bot.errors import BotError
from bot.listeners.commands import CommandRequest
from bot.services import Services


def digest(services: Services, request: CommandRequest, respond: Respond, client: WebClient) -> None:
    raise BotError("not_yet_available", feature="digest")
