"""render: outside text is made inert in mrkdwn, Block Kit limits hold whatever a template produces."""

from __future__ import annotations

import copy

import pytest

from bot import render
from tests.support.fake_slack import block_problems


@pytest.mark.parametrize(
    "raw, must_not_contain",
    [
        ("ping <!channel> now", "<!channel>"),
        ("ping <!here|here>", "<!here"),
        ("ping <!everyone>", "<!everyone>"),
        ("hi <@U123> and <@W9|bob>", "<@"),
        ("team <!subteam^S123|@ops>", "<!subteam"),
        ("see <#C123|general>", "<#C123"),
        ("click <https://evil.example/login|your AWS console>", "<https://"),
        ("mail <mailto:a@example.com|me>", "<mailto:"),
    ],
)
def test_escape_mrkdwn_neutralises_slack_markup(raw: str, must_not_contain: str) -> None:
    escaped = render.escape_mrkdwn(raw)

    assert must_not_contain not in escaped
    assert "<" not in escaped and ">" not in escaped


@pytest.mark.parametrize("word", ["@channel", "@here", "@everyone", "@Channel", "@HERE"])
def test_escape_mrkdwn_breaks_bare_broadcasts(word: str) -> None:
    escaped = render.escape_mrkdwn(f"attention {word}!")

    assert word not in escaped
    # still readable: the word is kept, only joined to the @ with an invisible character
    assert word[1:] in escaped
    assert escaped.replace("\u2060", "") == f"attention {word}!"


def test_escape_mrkdwn_escapes_ampersands_first() -> None:
    assert render.escape_mrkdwn("R&D <b> &lt;") == "R&amp;D &lt;b&gt; &amp;lt;"


@pytest.mark.parametrize("value, expected", [(None, ""), (42, "42"), ("", "")])
def test_escape_mrkdwn_accepts_anything(value: object, expected: str) -> None:
    assert render.escape_mrkdwn(value) == expected


def test_escape_plain_breaks_broadcasts_but_keeps_brackets() -> None:
    assert render.escape_plain("<b> @here") == "<b> @\u2060here"


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_fit_blocks_truncates_long_section_text() -> None:
    [fitted] = render.fit_blocks([_section("x" * 5000)], render.MAX_MESSAGE_BLOCKS)

    assert len(fitted["text"]["text"]) == 3000
    assert fitted["text"]["text"].endswith(render.ELLIPSIS)


def test_fit_blocks_keeps_text_at_the_limit_untouched() -> None:
    [fitted] = render.fit_blocks([_section("y" * 3000)], render.MAX_MESSAGE_BLOCKS)

    assert fitted["text"]["text"] == "y" * 3000


def test_fit_blocks_truncates_long_headers() -> None:
    header = {"type": "header", "text": {"type": "plain_text", "text": "H" * 200}}

    [fitted] = render.fit_blocks([header], render.MAX_MESSAGE_BLOCKS)

    assert len(fitted["text"]["text"]) == 150
    assert fitted["text"]["text"].endswith(render.ELLIPSIS)


def test_fit_blocks_keeps_at_most_ten_fields_of_at_most_2000_chars() -> None:
    fields = [{"type": "mrkdwn", "text": f"field {n} " + "z" * 2500} for n in range(12)]
    block = {"type": "section", "fields": fields}

    [fitted] = render.fit_blocks([block], render.MAX_MESSAGE_BLOCKS)

    assert len(fitted["fields"]) == 10
    assert [f["text"][:8] for f in fitted["fields"]] == [f"field {n} " for n in range(10)]
    assert all(len(f["text"]) <= 2000 for f in fitted["fields"])


def test_fit_blocks_caps_the_number_of_blocks() -> None:
    rendered = [_section(str(n)) for n in range(60)]

    fitted = render.fit_blocks(rendered, render.MAX_MESSAGE_BLOCKS)

    assert len(fitted) == 50
    assert fitted[-1]["text"]["text"] == "49"


def test_fit_blocks_caps_context_elements_and_button_text() -> None:
    context = {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 14}
    button = {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "B" * 90}}
    actions = {"type": "actions", "elements": [button]}

    fitted_context, fitted_actions = render.fit_blocks([context, actions], render.MAX_MESSAGE_BLOCKS)

    assert len(fitted_context["elements"]) == 10
    assert len(fitted_actions["elements"][0]["text"]["text"]) == 75


def test_fit_blocks_does_not_change_what_it_was_given() -> None:
    rendered = [_section("x" * 5000), {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 12}]
    before = copy.deepcopy(rendered)

    render.fit_blocks(rendered, render.MAX_MESSAGE_BLOCKS)

    assert rendered == before


def test_fitted_blocks_are_accepted_by_slacks_checks() -> None:
    # The same limits FakeSlack enforces (invalid_blocks): what fit_blocks returns must pass them.
    oversized = [
        {"type": "header", "text": {"type": "plain_text", "text": "H" * 400}},
        _section("s" * 9000),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 3000}] * 15},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 20},
        {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "b" * 99}}]},
    ] * 12
    assert block_problems(oversized, max_blocks=50)

    fitted = render.fit_blocks(oversized, render.MAX_MESSAGE_BLOCKS)

    assert block_problems(fitted, max_blocks=50) == []


def test_text_falls_back_to_unexpected_error_for_an_unknown_name() -> None:
    assert render.text("no_such_message_anywhere") == render.text("unexpected_error")
    assert render.text("unexpected_error")


def test_text_renders_a_known_message_with_its_context_escaped() -> None:
    rendered = render.text("unknown_subcommand", word="<!channel>")

    assert "&lt;!channel&gt;" in rendered
    assert "<!channel>" not in rendered


def test_every_template_compiles() -> None:
    # One broken messages*.txt.j2 would take every message down with it, unexpected_error included.
    names = sorted(path.name for path in render.templates_dir().iterdir() if path.name.endswith(".j2"))

    assert names
    for name in names:
        render.environment().get_template(name)


def test_templates_compile_once_per_process_however_the_environment_is_asked_for() -> None:
    # Each way of asking was a key of its own in a two-entry cache: asking three ways evicted the
    # environment, and every request after that compiled every template again (a third of a second).
    render.warm_up()
    slack, console = render.environment(), render.environment(console=True)
    render.text("unexpected_error")
    render.console_text("unexpected_error")
    render.warm_up()
    assert render.environment() is render.environment(False) is render.environment(console=False) is slack
    assert render.environment(True) is render.environment(console=True) is console
    assert render._message_macros() is render._message_macros(False) is render._message_macros(console=False)
