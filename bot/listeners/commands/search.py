"""`/aws-support search`: ephemeral pages of matching cases, 5 at a time, with Next and "Link here".

The matching cases are kept in the store under a random token (bot/cases/search_pages.py); the Next
button carries only that token and the page, so a page asks AWS nothing and the pages never shift.
A click by anyone else, or elsewhere, is refused; the cases shown are those the channel may use then.
"""

from __future__ import annotations

import json
import math
from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient

from bot import render
from bot.cases.search import PAGE_SIZE, SearchQuery, parse_search, search_cases
from bot.cases.search_pages import MAX_KEPT, KeptSearch
from bot.domain import Case
from bot.errors import NotAllowed
from bot.listeners.commands.request import CommandRequest
from bot.services import Services


def search(services: Services, request: CommandRequest, respond: Respond, client: WebClient) -> None:
    kept = run_search(services, request.rest, user=request.user_id, channel=request.channel_id)
    answer_page(services, kept, 1, respond=respond)


def run_search(services: Services, text: str, *, user: str, channel: str) -> KeptSearch:
    """Ask every account the query names (the one slow step), and keep the matches for the pages."""
    query = parse_search(text)
    result = search_cases(services.gateway, services.accounts, channel, query, names=services.cases.service_names)
    return services.search_pages.keep(result, text=text, user=user, channel=channel)


def answer_page(services: Services, kept: KeptSearch, page: int, *, respond: Respond, replace: bool = False) -> None:
    query = parse_search(kept.text)
    pages = max(1, math.ceil(len(kept.cases) / PAGE_SIZE))
    page = min(max(page, 1), pages)
    shown = kept.cases[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    lines = [{"case_id": case.case_id, "line": _line(services, case)} for case in shown]
    next_value = json.dumps({"t": kept.token, "p": page + 1}) if page < pages else ""
    unreachable = [{"alias": a, "id": i, "code": c} for a, i, c in kept.unreachable]
    notes = [render.text("search_unreachable", accounts=unreachable)] if unreachable else []
    if kept.total > MAX_KEPT and page == pages:
        notes.append(render.text("search_kept_only", kept=MAX_KEPT))
    respond(
        response_type="ephemeral",
        replace_original=replace,
        blocks=render.blocks(
            "search_results.json.j2",
            header=render.text(
                "search_header",
                words=list(query.words),
                count=kept.total,
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
            unreachable_text=render.Mrkdwn(" ".join(notes)),
        ),
        text=render.text("search_fallback", count=kept.total),
    )


def _scope(services: Services, query: SearchQuery) -> str:
    if services.routing is None:
        return ""
    return query.account if query.account and query.account != "all" else ""


def next_page(services: Services, value: str, *, user: str, channel: str, respond: Respond) -> None:
    """The Next button: the kept search, one page on, for the person who asked, where they asked."""
    try:
        state: dict[str, Any] = json.loads(value or "{}")
    except json.JSONDecodeError:
        state = {}
    if not isinstance(state, dict):
        state = {}
    raw_page = str(state.get("p") or "1")
    # A tampered value ("²" is a digit to isdigit, not to int; thousands of digits exceed int's limit) reads as page 1.
    page = int(raw_page) if raw_page.isascii() and raw_page.isdigit() and len(raw_page) <= 6 else 1
    if "t" not in state and "q" in state:
        # A Next button of the previous release carries the query: run it once more, then keep it.
        if state.get("u") != user or state.get("c") != channel:
            raise NotAllowed("search_not_yours")
        kept = run_search(services, str(state.get("q") or ""), user=user, channel=channel)
    else:
        kept = services.search_pages.load(
            str(state.get("t") or ""),
            user=user,
            channel=channel,
            visible=lambda c: services.kept_visible_in(channel, c),
        )
    answer_page(services, kept, page, respond=respond, replace=True)


def _line(services: Services, case: Case) -> str:
    service, category = services.cases.service_names(case.service_code, case.category_code)
    return render.text("search_line", case=case, opened=case.time_created[:10], service=service, category=category)
