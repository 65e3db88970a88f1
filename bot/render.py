"""Loads templates/ and renders what a person sees: Block Kit JSON and short messages.

Templates own every word and block. This module owns the rules Slack imposes whatever the
template says: escaping of text that came from outside, and Block Kit's size limits.

Escaping is the default, not a filter to remember: every string that reaches a Slack template
(from AWS, from people, from the store, at any depth of a record) arrives already escaped for
mrkdwn, as `Escaped` text that still knows its raw form. Templates take `|plain` for plain_text
and `|raw` for values the bot reads back (button values, private_metadata, initial values).
Text a template rendered is `Mrkdwn` and is never escaped twice. The terminal (`console_text`)
renders the same messages without any escaping.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import threading
from collections.abc import Iterator, Mapping
from decimal import Decimal
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


class Mrkdwn(str):
    """Text that may go into mrkdwn as it is: escaped outside text, or what a template rendered."""

    __slots__ = ()


class Escaped(Mrkdwn):
    """Outside text made inert for mrkdwn; `raw` is what it was, for plain_text and values."""

    raw: str

    def __new__(cls, raw: str) -> Escaped:
        made = super().__new__(cls, _escape(raw))
        made.raw = raw
        return made

    def __reduce__(self) -> tuple[Any, ...]:
        return (Escaped, (self.raw,))


def _escape(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub(lambda m: "@" + _WORD_JOINER + m.group(1), text)


def escape_mrkdwn(value: Any) -> Mrkdwn:
    """Text from AWS or people, made inert in mrkdwn: no links, no mentions, no broadcasts."""
    if isinstance(value, Mrkdwn):
        return value
    return Escaped(unescaped(value))


def escape_plain(value: Any) -> str:
    """plain_text is not parsed for links, but a bare @channel is still neutralised."""
    return _BROADCAST.sub(lambda m: "@" + _WORD_JOINER + m.group(1), unescaped(value))


def unescaped(value: Any) -> str:
    """The raw text of a value, whether or not it was escaped on its way into a template."""
    if value is None:
        return ""
    if isinstance(value, Escaped):
        return value.raw
    if isinstance(value, _Untrusted):
        return str(value._record)
    return str(value)


def truncate(value: Any, limit: int) -> str:
    if isinstance(value, Escaped):
        # Cut the raw text, then escape: an entity is never cut in half.
        return Escaped(truncate(value.raw, limit))
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def _replace(value: Any, old: str, new: str, count: int = -1) -> str:
    if isinstance(value, Escaped):
        return Escaped(value.raw.replace(old, new, count))
    return ("" if value is None else str(value)).replace(old, new, count)


# Values that are no text: they reach templates as they are.
_INERT = (bool, int, float, Decimal, datetime.date, datetime.time, datetime.timedelta, datetime.tzinfo)


def untrusted(value: Any) -> Any:
    """`value` as templates for Slack see it: every string in it, at any depth, escaped for mrkdwn."""
    if value is None or isinstance(value, (Mrkdwn, _Untrusted, *_INERT)):
        return value
    if isinstance(value, str):
        return Escaped(value)
    if isinstance(value, Mapping):
        return {key: untrusted(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [untrusted(item) for item in value]
    if callable(value) and not dataclasses.is_dataclass(value):
        return value  # a function or macro the template calls
    return _Untrusted(value)


class _Untrusted:
    """A record (Case, Communication, a digest row…) whose attributes come out escaped."""

    __slots__ = ("_record",)

    def __init__(self, target: Any) -> None:
        self._record = target

    def __getattr__(self, name: str) -> Any:
        return untrusted(getattr(self._record, name))

    def __getitem__(self, key: Any) -> Any:
        return untrusted(self._record[key])

    def __iter__(self) -> Iterator[Any]:
        return (untrusted(item) for item in self._record)

    def __len__(self) -> int:
        return len(self._record)

    def __bool__(self) -> bool:
        return bool(self._record)

    def __contains__(self, item: Any) -> bool:
        return unescaped(item) in self._record

    def __str__(self) -> str:
        return escape_mrkdwn(str(self._record))


def raw(value: Any) -> Any:
    """What a value was before it was escaped, at any depth: for values the bot reads back."""
    if isinstance(value, Escaped):
        return value.raw
    if isinstance(value, _Untrusted):
        return value._record
    if isinstance(value, Mapping):
        return {key: raw(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [raw(item) for item in value]
    return value


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


def environment(console: bool = False) -> Environment:
    """The templates for Slack; `console=True`: the same for a terminal, where nothing is escaped."""
    # One key per environment: lru_cache tells environment(), environment(False) and console=False apart.
    return _environment(bool(console))


@lru_cache(maxsize=2)
def _environment(console: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(templates_dir())),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["mrkdwn"] = unescaped if console else escape_mrkdwn
    env.filters["plain"] = unescaped if console else escape_plain
    env.filters["raw"] = raw
    env.filters["truncate_to"] = truncate
    env.filters["replace"] = _replace
    env.filters["money"] = _money
    env.filters["number"] = _number
    env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": False}
    return env


def _context(context: dict[str, Any]) -> dict[str, Any]:
    return {key: untrusted(value) for key, value in context.items()}


def render_json(template: str, **context: Any) -> Any:
    """Render a *.json.j2 template and parse it; a template that is not JSON is a bug, said loudly."""
    text = environment().get_template(template).render(**_context(context))
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


_macros: dict[bool, dict[str, Any]] = {}
# Compiling the messages is CPU work of most of a second: requests arriving together before it is
# done wait for one compile instead of each running its own, all on one interpreter lock.
_compiling = threading.Lock()


def _message_macros(console: bool = False) -> dict[str, Any]:
    """Every macro of templates/messages*.txt.j2 (one file per part of the bot), by name."""
    macros = _macros.get(console)
    if macros is None:
        with _compiling:
            macros = _macros.get(console)
            if macros is None:
                macros = _macros[console] = _compile_message_macros(console)
    return macros


def _compile_message_macros(console: bool) -> dict[str, Any]:
    macros: dict[str, Any] = {}
    for path in sorted(templates_dir().glob("messages*.txt.j2")):
        module = environment(console).get_template(path.name).make_module()
        for name in dir(module):
            if not name.startswith("_"):
                macros[name] = getattr(module, name)
    return macros


def _render_message(message: str, console: bool, context: dict[str, Any]) -> str:
    macros = _message_macros(console)
    macro = macros.get(message) or macros["unexpected_error"]
    if not macro.catch_kwargs:
        # Callers may pass more context than a message uses (errors carry their AWS details).
        context = {key: value for key, value in context.items() if key in macro.arguments}
    if not console:
        context = _context(context)
    return truncate(str(macro(**context)).strip(), MAX_MESSAGE_TEXT)


def text(message: str, /, **context: Any) -> Mrkdwn:
    """A short message for Slack: the macro `message` from templates/messages*.txt.j2."""
    return Mrkdwn(_render_message(message, False, context))


def console_text(message: str, /, **context: Any) -> str:
    """The same message for a terminal: no mrkdwn escaping (people read it as it is)."""
    return _render_message(message, True, context)


def warm_up() -> None:
    """Compile every template now (Jinja compiles on first use, which costs a request its latency)."""
    env = environment()
    for path in templates_dir().glob("*.j2"):
        env.get_template(path.name)
    _message_macros()
    _message_macros(console=True)


def error_text(error: BotError) -> Mrkdwn:
    return text(error.key, **error.params)


def console_error_text(error: BotError) -> str:
    return console_text(error.key, **error.params)


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
