"""The case sub-commands of /aws-support. Each runs after the ack and answers ephemerally."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

from slack_bolt import Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import render
from bot.accounts.routing import check_ref_syntax
from bot.cases.service import plain_text_from_slack
from bot.errors import BotError, SlackError, UserInputError
from bot.listeners.commands.request import CommandRequest
from bot.services import Services

LIST_LIMIT = 45  # lines of cases in one ephemeral message before "…and N more"


def _case_ref(request: CommandRequest, usage: str) -> str:
    if len(request.args) < 2:
        raise UserInputError("missing_case_ref", usage=usage)
    return request.args[1]


def _case_id(services: Services, request: CommandRequest, usage: str) -> str:
    """The case the command names, found among the accounts this channel may use (refused otherwise)."""
    return services.case_id_for(request.channel_id, _case_ref(request, usage))


def create(services: Services, request: CommandRequest, respond: Respond, client: WebClient) -> None:
    from bot.listeners.views.cases import create_case_view

    view = create_case_view(services, channel=request.channel_id, subject=request.rest)
    try:
        client.views_open(trigger_id=request.trigger_id, view=view)
    except SlackApiError as exc:
        raise SlackError(error=exc.response.get("error", "")) from exc


def list_cases(services: Services, request: CommandRequest, respond: Respond, client: WebClient) -> None:
    scope = request.args[1].lower() if len(request.args) > 1 else ""
    if scope == "all":
        cases = services.cases.open_cases_of_account(request.user_id)
        # Every account's cases, but shown only where their account may be used.
        cases = [case for case in cases if services.visible_in(request.channel_id, case)]
    elif scope:
        raise UserInputError("bad_input", usage="/aws-support list [all]")
    else:
        cases = services.cases.open_cases_in_channel(request.channel_id)
    lines = [{"line": render.text("case_list_line", case=case)} for case in cases[:LIST_LIMIT]]
    respond(
        response_type="ephemeral",
        blocks=render.blocks("case_list.json.j2", cases=lines, scope=scope, more=max(0, len(cases) - LIST_LIMIT)),
        text=render.text("case_list_fallback", count=len(cases)),
    )


def show(services: Services, request: CommandRequest, respond: Respond, client: WebClient) -> None:
    case, communications = services.cases.case_with_history(_case_id(services, request, "/aws-support show <case>"))
    service_name, category_name = services.cases.service_names(case.service_code, case.category_code)
    respond(
        response_type="ephemeral",
        blocks=render.blocks(
            "case_summary.json.j2",
            case=case,
            communications=communications,
            service_name=service_name,
            category_name=category_name,
            severity_name=services.cases.severity_name(case.severity_code),
            linked_here=services.cases.link_in(case.case_id, request.channel_id) is not None,
        ),
        text=render.text("case_card_fallback", case=case),
    )


def link(services: Services, request: CommandRequest, respond: Respond, client: WebClient) -> None:
    case, _, is_new = services.cases.link(
        _case_id(services, request, "/aws-support link <case>"), request.channel_id, request.user_id
    )
    message = "case_linked" if is_new else "case_already_linked"
    respond(response_type="ephemeral", text=render.text(message, case=case, channel=request.channel_id))


def unlink(services: Services, request: CommandRequest, respond: Respond, client: WebClient) -> None:
    case = services.cases.unlink(
        _case_id(services, request, "/aws-support unlink <case>"), request.channel_id, request.user_id
    )
    respond(response_type="ephemeral", text=render.text("case_unlinked", case=case))


def prepare_reply(services: Services, request: CommandRequest) -> CommandRequest:
    """Before the ack: check the words and note the reply durably (no AWS call here)."""
    ref = _case_ref(request, "/aws-support reply <case> <text…>")
    check_ref_syntax(ref)
    ref = services.plain_ref(ref)
    parts = request.rest.split(maxsplit=1)
    text = plain_text_from_slack(parts[1] if len(parts) > 1 else "", services.cases.display_name_if_known)
    if not text.strip():
        raise UserInputError("reply_usage")
    services.check_ref(request.channel_id, ref)  # an account this channel may use
    # Keyed by the trigger_id: the same signed request replayed finds the reply noted already.
    lease = services.cases.note_command_reply(
        ref, text, user=request.user_id, channel=request.channel_id, action_id=f"trigger:{request.trigger_id}"
    )
    return replace(request, intake=lease.key if lease else "")


def reply(services: Services, request: CommandRequest, respond: Respond, client: WebClient) -> None:
    def answer(outcome: dict | None, error: BotError | None) -> None:
        if error is not None:
            respond(response_type="ephemeral", replace_original=False, text=render.error_text(error))
        elif outcome is not None:
            case = SimpleNamespace(display_id=outcome["display_id"], status=outcome["status"])
            respond(response_type="ephemeral", text=render.text("reply_sent", case=case, linked=outcome["linked"]))

    # Runs in the queue of the case's thread, after the replies written there before it.
    services.cases.start_noted(request.intake, on_done=answer)


def resolve(services: Services, request: CommandRequest, respond: Respond, client: WebClient) -> None:
    case = services.cases.resolve(
        _case_id(services, request, "/aws-support resolve <case>"), request.user_id, request.channel_id
    )
    respond(response_type="ephemeral", text=render.text("case_resolved", case=case))


def private_metadata(**values: str) -> str:
    return json.dumps(values)
