"""/aws-support: parse the text, ack within Slack's 3 s, then run the sub-command."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot import render
from bot.errors import BotError, UserInputError
from bot.services import Services

logger = logging.getLogger(__name__)

COMMAND = "/aws-support"
# Sub-commands that must finish while Slack's trigger_id is valid (3 s) run on the listener thread.
INLINE = {"create", "help"}


@dataclass(frozen=True)
class CommandRequest:
    """The parts of a slash command payload the sub-commands use."""

    user_id: str
    channel_id: str
    text: str
    args: list[str]
    trigger_id: str
    team_id: str = ""
    intake: str = ""  # the store key of what was noted before the ack (see PREPARE)

    @property
    def rest(self) -> str:
        """Everything after the sub-command word, spacing and newlines kept."""
        parts = self.text.strip().split(maxsplit=1)
        return parts[1] if len(parts) > 1 else ""


Handler = Callable[[Services, CommandRequest, Respond, WebClient], None]


def _handlers() -> dict[str, Handler]:
    # Imported here so each surface's module stays the only place that knows its sub-commands.
    from bot.listeners import case_commands, digest_commands, watch_commands

    return {
        "help": case_commands.show_help,
        "create": case_commands.create,
        "list": case_commands.list_cases,
        "show": case_commands.show,
        "link": case_commands.link,
        "unlink": case_commands.unlink,
        "reply": case_commands.reply,
        "resolve": case_commands.resolve,
        "watch": watch_commands.watch,
        "unwatch": watch_commands.unwatch,
        "digest": digest_commands.digest,
    }


def _prepare() -> dict[str, Callable[[Services, CommandRequest], CommandRequest]]:
    """Sub-commands that note what they were asked in the store before the ack: Slack does not
    resend an acknowledged command, so a crash after the ack must find it there."""
    from bot.listeners import case_commands

    return {"reply": case_commands.prepare_reply}


def handle_command(ack: Ack, command: dict, respond: Respond, client: WebClient, context: BoltContext) -> None:
    services: Services = context["services"]
    text = (command.get("text") or "").strip()
    args = text.split()
    request = CommandRequest(
        user_id=command.get("user_id", ""),
        channel_id=command.get("channel_id", ""),
        text=text,
        args=args,
        trigger_id=command.get("trigger_id", ""),
        team_id=command.get("team_id", ""),
    )
    name = args[0].lower() if args else "help"
    handler = _handlers().get(name)
    if handler is None:
        ack(response_type="ephemeral", text=render.text("unknown_subcommand", word=args[0]))
        return
    prepare = _prepare().get(name)
    if prepare is not None:
        try:
            request = prepare(services, request)
        except BotError as error:
            ack(response_type="ephemeral", text=render.error_text(error))
            return
    ack()

    def run() -> None:
        try:
            handler(services, request, respond, client)
        except BotError as error:
            respond(response_type="ephemeral", replace_original=False, text=render.error_text(error))
        except Exception:
            logger.exception("/aws-support %s failed", name)
            respond(response_type="ephemeral", replace_original=False, text=render.text("unexpected_error"))

    if name in INLINE:
        run()
    else:
        services.work.submit(run)


def register(app: App) -> None:
    app.command(COMMAND)(handle_command)


__all__ = ["CommandRequest", "UserInputError", "register"]
