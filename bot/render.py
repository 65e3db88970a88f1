"""Loads templates/ and renders what a person sees: Block Kit JSON and short messages.

Templates own every word and block. This module owns the rules Slack imposes whatever the
template says: escaping of text that came from outside, and Block Kit's size limits.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot.errors import BotError

# Block Kit limits (https://api.slack.com/reference/block-kit)
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_BUTTON_TEXT = 75
MAX_MESSAGE_TEXT = 40000
MAX_OPTION_TEXT = 75
MAX_OPTIONS = 100
ELLIPSIS = "…"

_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_WORD_JOINER = "\u2060"


def templates_dir() -> Path:
    """Installed wheels carry templates inside the package; a checkout has them at the top."""
    packaged = Path(__file__).parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "templates"


def escape_mrkdwn(value: Any) -> str:
    """Text from AWS or people, made inert in mrkdwn: no links, no mentions, no broadcasts."""
    text = "" if value is None else str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub(lambda m: "@" + _WORD_JOINER + m.group(1), text)


def escape_plain(value: Any) -> str:
    """plain_text is not parsed for links, but a bare @channel is still neutralised."""
    text = "" if value is None else str(value)
    return _BROADCAST.sub(lambda m: "@" + _WORD_JOINER + m.group(1), text)


def truncate(value: Any, limit: int) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def _money(value: Any) -> str:
    try:
        return f"${float(value):,.2f}"
    except (TypeError, ValueError):
        return "$0.00"


def _number(value: Any) -> str:
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "0"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(templates_dir())),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["mrkdwn"] = escape_mrkdwn
    env.filters["plain"] = escape_plain
    env.filters["truncate_to"] = truncate
    env.filters["money"] = _money
    env.filters["number"] = _number
    env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": False}
    return env


def render_json(template: str, **context: Any) -> Any:
    """Render a *.json.j2 template and parse it; a template that is not JSON is a bug, said loudly."""
    text = environment().get_template(template).render(**context)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"template {template} rendered invalid JSON: {exc}\n{text[:2000]}") from exc


def blocks(template: str, **context: Any) -> list[dict[str, Any]]:
    """Message blocks from a template, held to Block Kit's limits."""
    rendered = render_json(template, **context)
    return fit_blocks(rendered, MAX_MESSAGE_BLOCKS)


def view(template: str, **context: Any) -> dict[str, Any]:
    """A modal view from a template, held to Block Kit's limits."""
    rendered = render_json(template, **context)
    rendered["blocks"] = fit_blocks(rendered.get("blocks", []), MAX_VIEW_BLOCKS)
    return rendered


@lru_cache(maxsize=1)
def _message_macros() -> dict[str, Any]:
    """Every macro of templates/messages*.txt.j2 (one file per part of the bot), by name."""
    macros: dict[str, Any] = {}
    for path in sorted(templates_dir().glob("messages*.txt.j2")):
        module = environment().get_template(path.name).make_module()
        for name in dir(module):
            if not name.startswith("_"):
                macros[name] = getattr(module, name)
    return macros


def text(message: str, /, **context: Any) -> str:
    """A short message: the macro `message` from templates/messages*.txt.j2."""
    macros = _message_macros()
    macro = macros.get(message) or macros["unexpected_error"]
    if not macro.catch_kwargs:
        # Callers may pass more context than a message uses (errors carry their AWS details).
        context = {key: value for key, value in context.items() if key in macro.arguments}
    return truncate(str(macro(**context)).strip(), MAX_MESSAGE_TEXT)


def warm_up() -> None:
    """Compile every template now (Jinja compiles on first use, which costs a request its latency)."""
    env = environment()
    for path in templates_dir().glob("*.j2"):
        env.get_template(path.name)
    _message_macros()


def error_text(error: BotError) -> str:
    return text(error.key, **error.params)


def fit_blocks(rendered: list[dict[str, Any]], max_blocks: int) -> list[dict[str, Any]]:
    fitted = [_fit_block(block) for block in rendered]
    if len(fitted) > max_blocks:
        # Templates that can overflow cut with "…and N more" themselves; this is the backstop.
        fitted = fitted[:max_blocks]
    return fitted


def _fit_text_object(obj: dict[str, Any], limit: int) -> dict[str, Any]:
    if isinstance(obj, dict) and "text" in obj:
        obj = dict(obj, text=truncate(obj["text"], limit))
    return obj


def _fit_block(block: dict[str, Any]) -> dict[str, Any]:
    block = dict(block)
    kind = block.get("type")
    if kind == "header":
        block["text"] = _fit_text_object(block["text"], MAX_HEADER_TEXT)
    elif kind == "section":
        if "text" in block:
            block["text"] = _fit_text_object(block["text"], MAX_SECTION_TEXT)
        if "fields" in block:
            block["fields"] = [_fit_text_object(f, MAX_FIELD_TEXT) for f in block["fields"][:MAX_SECTION_FIELDS]]
    elif kind == "context":
        block["elements"] = [_fit_text_object(e, MAX_SECTION_TEXT) for e in block["elements"][:MAX_CONTEXT_ELEMENTS]]
    elif kind == "actions":
        block["elements"] = [
            dict(e, text=_fit_text_object(e["text"], MAX_BUTTON_TEXT)) if e.get("type") == "button" else e
            for e in block["elements"]
        ]
    return block


def console_error_text(error: BotError) -> str:
    """An error's message for a terminal (`check`, `digest --print`): the message is written for
    mrkdwn, so what escape_mrkdwn turned into entities is read back (in its reverse order)."""
    text = error_text(error).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return text.replace("@" + _WORD_JOINER, "@")
