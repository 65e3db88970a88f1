"""Block Kit as slack_sdk's own models read it, plus the rules Slack enforces that the models do not.

FakeSlack runs every posted message, response-URL body and view through these, so every
end-to-end test checks every surface it makes the bot draw; the options listener's answers
(which travel in the HTTP ack, not through the Web API) go through `options_problems`.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block, Option
from slack_sdk.models.views import View

MAX_OPTIONS = 100
MAX_OPTION_VALUE = 150  # Option.value_max_length; slack_sdk declares it but does not check it
MAX_OPTION_TEXT = 75


def sdk_block_problems(blocks: Any, pointer: str = "/blocks") -> list[str]:
    if not isinstance(blocks, list):
        return []
    problems = []
    for i, raw in enumerate(blocks):
        here = f"{pointer}/{i}"
        try:
            block = Block.parse(raw)
            if block is None or type(block) is Block:
                problems.append(f"[ERROR] unknown block type {raw.get('type')!r} [json-pointer:{here}]")
                continue
            block.to_dict()  # validates the block and, through to_dict, every object in it
        except (SlackObjectFormationError, KeyError, TypeError, ValueError) as exc:
            problems.append(f"[ERROR] {exc} [json-pointer:{here}]")
        problems.extend(_empty_texts(raw, here))
        problems.extend(options_problems(_options_in(raw), here))
    return problems


def sdk_view_problems(view: Any) -> list[str]:
    if not isinstance(view, dict):
        return []
    try:
        View(**view).to_dict()
    except (SlackObjectFormationError, KeyError, TypeError, ValueError) as exc:
        return [f"[ERROR] {exc} [json-pointer:/view]"]
    return []


def options_problems(options: Any, pointer: str = "/options") -> list[str]:
    """Options of a select, or of an options listener's answer."""
    if not isinstance(options, list):
        return []
    problems = []
    if len(options) > MAX_OPTIONS:
        problems.append(f"[ERROR] no more than {MAX_OPTIONS} items allowed [json-pointer:{pointer}]")
    for j, raw in enumerate(options):
        here = f"{pointer}/options/{j}"
        try:
            Option(**raw).to_dict()
        except (SlackObjectFormationError, TypeError) as exc:
            problems.append(f"[ERROR] {exc} [json-pointer:{here}]")
            continue
        value = str(raw.get("value", ""))
        if not value or len(value) > MAX_OPTION_VALUE:
            problems.append(f"[ERROR] value must be 1 to {MAX_OPTION_VALUE} characters [json-pointer:{here}/value]")
        text = (raw.get("text") or {}).get("text", "")
        if not text or len(text) > MAX_OPTION_TEXT:
            problems.append(f"[ERROR] text must be 1 to {MAX_OPTION_TEXT} characters [json-pointer:{here}/text]")
    return problems


def _options_in(block: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if not isinstance(block, dict):
        return found
    elements = [block.get("element"), block.get("accessory"), *(block.get("elements") or [])]
    for element in elements:
        if isinstance(element, dict):
            found.extend(o for o in element.get("options") or [] if isinstance(o, dict))
            if isinstance(element.get("initial_option"), dict):
                found.append(element["initial_option"])
    return found


def _empty_texts(node: Any, pointer: str) -> list[str]:
    """Slack refuses a text object whose text is empty ("must be more than 0 characters")."""
    problems = []
    if isinstance(node, dict):
        if node.get("type") in ("plain_text", "mrkdwn") and not str(node.get("text", "")):
            problems.append(f"[ERROR] must be more than 0 characters [json-pointer:{pointer}/text]")
        for key, value in node.items():
            problems.extend(_empty_texts(value, f"{pointer}/{key}"))
    elif isinstance(node, list):
        for j, value in enumerate(node):
            problems.extend(_empty_texts(value, f"{pointer}/{j}"))
    return problems
