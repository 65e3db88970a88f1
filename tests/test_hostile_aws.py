"""Every value AWS sends is data, never Slack markup, on every surface the bot draws (issue 8, defect 12).

The sandbox starts every free-text member of its answers (status, severityCode, displayId, subject,
bodies, names, file names, Trusted Advisor names and metadata…) with markup that would notify a
channel, mention people, point at a channel or disguise a link; then the bot draws every surface
and nothing of it may survive unescaped in mrkdwn, nor be escaped twice.
"""

from __future__ import annotations

import re
from typing import Any

from bot import render
from bot.domain import Case, Communication
from tests.cases.helpers import open_case_at_aws
from tests.support.harness import ADMIN
from tests.sync.test_watch import watching

HOSTILE = "<!channel> <@U0BOSS> <#C0SECRET|ops> <https://evil.example/login|AWS console> @here R&D "
# What must not appear in mrkdwn: each would notify, mention, link or disguise a link.
LIVE_MARKUP = ("<!channel>", "<@U0BOSS>", "<#C0SECRET", "<https://evil", "@here")
SURFACE_METHODS = (
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "response_url",
    "views.open",
    "views.update",
)


def mrkdwn_and_plain(payload: Any) -> tuple[list[str], list[str]]:
    """The mrkdwn texts (a message's own `text` included) and the plain_text texts of a payload."""
    mrkdwn: list[str] = []
    plain: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                (plain if node.get("type") == "plain_text" else mrkdwn).append(node["text"])
            for key, value in node.items():
                if key != "text" or not isinstance(value, str):
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(payload)
    return mrkdwn, plain


def problems(payload: Any) -> list[str]:
    mrkdwn, plain = mrkdwn_and_plain(payload)
    found = [f"live {m!r} in {t[:200]!r}" for t in mrkdwn for m in LIVE_MARKUP if m in t]
    found += [f"escaped twice in {t[:200]!r}" for t in mrkdwn if re.search(r"&amp;(amp|lt|gt);", t)]
    found += [f"broadcast in plain_text {t[:200]!r}" for t in plain if "@here" in t or "@channel" in t]
    return found


def surfaces(bot: Any) -> list[Any]:
    return [call for method in SURFACE_METHODS for call in bot.slack.calls(method)]


def test_every_surface_keeps_aws_text_inert(bot: Any) -> None:
    case = open_case_at_aws(bot, subject="Disk full")
    second = open_case_at_aws(bot, subject="Second case")
    watching(bot, channel="C9")  # a card for every case opened outside Slack
    bot.sandbox.set_hostile_prefix(HOSTILE)

    for text, user in [
        (f"link {case.case_id}", "U1"),  # the case card, and "linked" in reply
        ("list", "U1"),
        ("list all", ADMIN),
        (f"show {case.case_id}", "U1"),
        (f"reply {case.case_id} Here are the logs", "U1"),
    ]:
        bot.command(text, user=user)
        bot.wait_for_response()
    bot.command("create Disk full")  # the Create form: severity names from AWS
    bot.slack.wait_for("views.open")
    bot.services.sync.run_cycle()  # the watch channel's card for the second case, threads caught up

    # AWS answers with a file and a new status: the thread gets the reply and a status line.
    bot.sandbox.add_aws_reply(
        case.case_id, "Please run df -h <!here>", attachments=[("df.txt", b"/ 100%")], status="resolved"
    )
    bot.services.sync.run_cycle()
    bot.command(f"resolve {second.case_id}", user=ADMIN, channel="C9")
    bot.wait_for_response()
    bot.command("digest")
    bot.slack.wait_for("chat.postMessage", lambda c: "digest_header" in str(c.params.get("blocks")))

    methods = {call.method for call in surfaces(bot)}
    assert {"chat.postMessage", "response_url", "views.open"} <= methods
    shown = "\n".join(str(call.params) for call in surfaces(bot))
    assert "U0BOSS" in shown and "evil.example" in shown  # AWS's text was drawn: as text
    assert [problem for call in surfaces(bot) for problem in problems(call.params)] == []


def test_every_case_and_communication_field_is_escaped_in_every_case_template() -> None:
    # Times and IDs too: the sandbox keeps those intact so the bot can follow the case, but AWS does not promise it.
    comm = Communication(HOSTILE + "case-1", HOSTILE + "body", HOSTILE + "AWS", HOSTILE + "2026-01-01T00:00:00Z")
    case = Case(*(HOSTILE + name for name in ("id", "101", "subject", "status", "svc", "cat", "sev", "me", "time")))
    case = Case(**{**case.__dict__, "recent_communications": (comm,)})
    rendered = [
        render.blocks(
            "case_card.json.j2",
            case=case,
            record={"opened_by": ""},
            service_name=HOSTILE,
            category_name=HOSTILE,
            severity_name=HOSTILE,
        ),
        render.blocks(
            "case_summary.json.j2",
            case=case,
            communications=[comm],
            service_name=HOSTILE,
            category_name=HOSTILE,
            severity_name=HOSTILE,
            linked_here=False,
        ),
        render.blocks(
            "sync_communication.json.j2",
            comm=comm,
            display_id=case.display_id,
            sections=[comm.body],
            part=1,
            parts=1,
            epoch=1,
            attachments=[HOSTILE + "file"],
        ),
        render.view("reply_modal.json.j2", case=case, reopen=True, private_metadata="{}"),
        render.text("case_card_fallback", case=case),
        render.text("case_list_line", case=case),
        render.text("sync_status_changed", status=case.status, previous=HOSTILE, display_id=case.display_id),
        render.text("sync_communication_fallback", comm=comm, display_id=case.display_id, sections=[comm.body]),
        *(render.text(key, case=case) for key in ("reply_sent", "case_linked", "case_resolved", "case_unlinked")),
    ]
    assert [
        problem
        for payload in rendered
        for problem in problems({"text": payload} if isinstance(payload, str) else payload)
    ] == []
