"""/aws-support: parse the text, ack within Slack's 3 s, then run the sub-command."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot import render
from bot.errors import BotError, UserInputError
from bot.listeners.boundary import guarded, on_prompt_pool
from bot.listeners.commands import accounts, cases, digest, search, watch
from bot.listeners.commands.request import CommandRequest
from bot.services import Services

logger = logging.getLogger(__name__)

COMMAND = "/aws-support"
HELP = "help"
# Sub-commands that must act while Slack's trigger_id is valid (3 s): started at once after the ack,
# not held for a lull as the others are.
PROMPT = {"create"}


Handler = Callable[[Services, CommandRequest, Respond, WebClient], None]


def _handlers() -> dict[str, Handler]:
    return {
        "create": cases.create,
        "list": cases.list_cases,
        "show": cases.show,
        "link": cases.link,
        "unlink": cases.unlink,
        "reply": cases.reply,
        "resolve": cases.resolve,
        "watch": watch.watch,
        "unwatch": watch.unwatch,
        "digest": digest.digest,
        "accounts": accounts.accounts,
        "account": accounts.account,
        "search": search.search,
    }


def _prepare() -> dict[str, Callable[[Services, CommandRequest], CommandRequest]]:
    """Sub-commands that note what they were asked in the store before the ack: Slack does not
    resend an acknowledged command, so a crash after the ack must find it there."""
    return {"reply": cases.prepare_reply}


def parse_command(command: dict) -> CommandRequest:
    """The slash command payload as the sub-commands see it."""
    text = (command.get("text") or "").strip()
    return CommandRequest(
        user_id=command.get("user_id", ""),
        channel_id=command.get("channel_id", ""),
        text=text,
        args=text.split(),
        trigger_id=command.get("trigger_id", ""),
        team_id=command.get("team_id", ""),
    )


def sub_command(request: CommandRequest) -> str:
    """The sub-command's name, lower-cased; no words at all asks for help."""
    return request.args[0].lower() if request.args else HELP


@functools.cache
def _help() -> tuple[list[dict], str]:
    """The help text takes nothing from the request: rendered once, not on every ack of a burst."""
    return render.blocks("help.json.j2"), render.text("help_fallback")


def handle_command(ack: Ack, command: dict, respond: Respond, client: WebClient, context: BoltContext) -> None:
    request = parse_command(command)
    name = sub_command(request)
    # Answers that need nothing but the words go in the ack itself: no second request to Slack.
    if name == HELP:
        blocks, fallback = _help()
        ack(response_type="ephemeral", blocks=blocks, text=fallback)
        return
    handler = _handlers().get(name)
    if handler is None:
        ack(response_type="ephemeral", text=render.text("unknown_subcommand", word=request.args[0]))
        return
    services: Services = context["services"]
    prepare = _prepare().get(name)
    if prepare is not None:
        try:
            request = prepare(services, request)
        except BotError as error:
            ack(response_type="ephemeral", text=render.error_text(error))
            return
    ack()
    if prepare is not None and not request.intake:
        # Noted already, under what Slack gives once per command: a replay. Whoever noted it sends it
        # and answers; a second answer here would contradict theirs.
        logger.warning("/aws-support %s not run again: it was noted already (a replay)", name)
        return

    def answer(text: str) -> None:
        respond(response_type="ephemeral", replace_original=False, text=text)

    # What prepare noted before the ack is this process's to send, whoever wins the request's claim.
    noted = bool(request.intake)
    run = guarded(f"/aws-support {name}", answer, lambda: handler(services, request, respond, client), noted=noted)

    if name in PROMPT:
        on_prompt_pool(services, run, f"/aws-support {name}")
    else:
        services.work.submit(run)


def register(app: App) -> None:
    app.command(COMMAND)(handle_command)


__all__ = ["CommandRequest", "UserInputError", "register"]
