"""Hostile but legal AWS data within Block Kit's limits (issue 8, defect 17).

Every message and view the bot sends is checked by FakeSlack against slack_sdk's models and Slack's
rules (tests/support/block_kit.py; the fixture fails a test that drew an invalid one); the options
listener answers in the HTTP ack, so its options are checked here.
"""

from __future__ import annotations

from typing import Any

from bot.domain import NewCase
from tests.support.block_kit import options_problems

LONG_SERVICE = "service-" + "s" * 192  # 200 characters: legal for AWS, over Slack's 150 for an option value
CATEGORIES = [(f"category-{i:03d}-" + "c" * 160, f"Category {i:03d}") for i in range(150)]  # over Slack's 100


def open_modal(bot: Any) -> dict[str, Any]:
    bot.command("create Disk full")
    [call] = bot.slack.wait_for("views.open")
    return call.response["view"]


def suggestions(bot: Any, action_id: str, query: str, view: dict[str, Any]) -> list[dict[str, Any]]:
    answer = bot.requests.block_suggestion(action_id, query, view=view)
    assert answer.status == 200
    options = answer.body["options"]
    assert options_problems(options) == []
    return options


def selected(action_id: str, option: dict[str, Any], kind: str = "external_select") -> dict[str, Any]:
    return {"type": kind, "action_id": action_id, "block_id": action_id, "selected_option": option}


def form_state(service: dict[str, Any], category_block: str, category: dict[str, Any]) -> dict[str, Any]:
    def choice(name: str, value: str) -> dict[str, Any]:
        return {name: selected(name, {"text": {"type": "plain_text", "text": value}, "value": value}, "static_select")}

    return {
        "subject": {"subject": {"type": "plain_text_input", "value": "Long codes"}},
        "service": {"service": service},
        category_block: {"category": category},
        "severity": choice("severity", "low"),
        "issue_type": choice("issue_type", "technical"),
        "description": {"description": {"type": "plain_text_input", "value": "It happens."}},
        "cc": {"cc": {"type": "plain_text_input", "value": ""}},
        "language": choice("language", "en"),
        "attachments": {"attachments": {"type": "file_input", "files": []}},
    }


def test_a_service_with_150_categories_and_200_character_codes_can_be_chosen_and_opened(bot: Any) -> None:
    bot.sandbox.add_service(LONG_SERVICE, "Zeta long-coded service", CATEGORIES)
    view = open_modal(bot)

    [service_option] = [o for o in suggestions(bot, "service", "zeta long", view)]
    service = selected("service", service_option)
    bot.requests.block_actions(service, view=view, state_values={"service": {"service": service}})
    [update] = bot.slack.wait_for("views.update")  # FakeSlack refuses an invalid view: this one is valid
    [category_block] = [b for b in update.params["view"]["blocks"] if b["block_id"].startswith("category")]

    with_service = {**view, "state": {"values": {"service": {"service": service}}}}
    assert len(suggestions(bot, "category", "", with_service)) == 100
    [last] = suggestions(bot, "category", "Category 149", with_service)
    kind = category_block["element"]["type"]
    state = form_state(service, category_block["block_id"], selected("category", last, kind))
    answer = bot.requests.view_submission(view, values=state)
    assert answer.status == 200 and not answer.body

    bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None, timeout=15)
    [case] = bot.sandbox.cases.values()
    assert (case.service_code, case.category_code) == (LONG_SERVICE, CATEGORIES[149][0])


def test_a_case_without_a_subject_still_gets_a_card(bot: Any) -> None:
    case_id = bot.services.gateway.create_case(
        NewCase("To be emptied", "amazon-elastic-compute-cloud-linux", "general-guidance", "low", "Body")
    )
    bot.sandbox.edit_case(case_id, subject="")
    bot.command(f"link {case_id}")
    bot.wait_for_response()
    [post] = bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None)
    [header] = [b for b in post.params["blocks"] if b["type"] == "header"]
    assert header["text"]["text"].strip()
