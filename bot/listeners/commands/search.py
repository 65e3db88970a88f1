"""`/aws-support search`: ephemeral pages of matching cases, 5 at a time, with Next and "Link here".

The Next button carries the search itself (the words, the page, who asked and where), so no state is
kept between pages; a click by anyone else, or elsewhere, is refused.
"""

from __future__ import annotations

import json
import math
from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient

from bot import render
from bot.cases.search import PAGE_SIZE, SearchQuery, parse_search, search_cases
from bot.errors import NotAllowed
from bot.listeners.commands.request import CommandRequest
from bot.services import Services


def search(services: Services, request: CommandRequest, respond: Respond, client: WebClient) -> None:
    answer_page(services, request.rest, 1, user=request.user_id, channel=request.channel_id, respond=respond)


def answer_page(
    services: Services, text: str, page: int, *, user: str, channel: str, respond: Respond, replace: bool = False
) -> None:
    query = parse_search(text)
    result = search_cases(services.gateway, services.accounts, channel, query, names=services.cases.service_names)
    pages = max(1, math.ceil(len(result.cases) / PAGE_SIZE))
    page = min(max(page, 1), pages)
    shown = result.cases[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    lines = [
        {"case_id": case.case_id, "line": render.text("search_line", case=case, opened=case.time_created[:10])}
        for case in shown
    ]
    next_value = json.dumps({"q": text, "p": page + 1, "u": user, "c": channel}) if page < pages else ""
    unreachable = [{"alias": a, "id": i, "code": c} for a, i, c in result.unreachable]
    respond(
        response_type="ephemeral",
        replace_original=replace,
        blocks=render.blocks(
            "search_results.json.j2",
            header=render.text(
                "search_header",
                words=list(query.words),
                count=len(result.cases),
                page=page,
                pages=pages,
                status=query.status,
                since=query.since.isoformat() if query.since else "",
                scope=_scope(services, query),
            ),
            cases=lines,
            none_text=render.text("search_none"),
            link_text=render.text("search_link_button"),
            next_text=render.text("search_next_button"),
            next_value=next_value,
            unreachable_text=render.text("search_unreachable", accounts=unreachable) if unreachable else "",
        ),
        text=render.text("search_fallback", count=len(result.cases)),
    )


def _scope(services: Services, query: SearchQuery) -> str:
    if services.routing is None:
        return ""
    return query.account if query.account and query.account != "all" else ""


def next_page(services: Services, value: str, *, user: str, channel: str, respond: Respond) -> None:
    """The Next button: the same search, one page on, for the person who asked, where they asked."""
    try:
        state: dict[str, Any] = json.loads(value or "{}")
    except json.JSONDecodeError:
        state = {}
    if state.get("u") != user or state.get("c") != channel:
        raise NotAllowed("search_not_yours")
    answer_page(
        services,
        str(state.get("q") or ""),
        int(state.get("p") or 1),
        user=user,
        channel=channel,
        respond=respond,
        replace=True,
    )
