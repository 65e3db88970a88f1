"""`/aws-support accounts` (what the bot serves, and whether each account answers) and `account <alias>`."""

from __future__ import annotations

from slack_bolt import Respond
from slack_sdk import WebClient

from bot import render
from bot.errors import NotAllowed, UserInputError
from bot.listeners.commands.request import CommandRequest
from bot.services import Services


def accounts(services: Services, request: CommandRequest, respond: Respond, client: WebClient) -> None:
    if len(request.args) > 1:
        raise UserInputError("bad_input", usage="/aws-support accounts")
    rows = services.account_rows(request.channel_id)
    respond(
        response_type="ephemeral",
        text=render.text("accounts_list", accounts=rows, problems=list(services.accounts.problems)),
    )


def account(services: Services, request: CommandRequest, respond: Respond, client: WebClient) -> None:
    if len(request.args) != 2:
        raise UserInputError("bad_input", usage="/aws-support account <alias>")
    if not services.settings.is_admin(request.user_id):
        raise NotAllowed("account_admins_only")
    chosen = services.accounts.set_default(request.channel_id, request.args[1], user=request.user_id)
    respond(
        response_type="in_channel",
        replace_original=False,
        text=render.text("account_default_set", alias=chosen.alias, account_id=services.accounts.account_id(chosen)),
    )
