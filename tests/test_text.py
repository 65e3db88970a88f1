"""The one text splitter (bot/text.py), as AWS bodies and Slack sections use it."""

from bot import render
from bot.sync.poster import SECTION_LIMIT, message_parts
from bot.text import split_at_breaks


def test_short_text_is_one_piece_and_empty_text_one_empty_piece():
    assert split_at_breaks("hello", 10) == ["hello"]
    assert split_at_breaks("", 10) == [""]


def test_cut_prefers_a_line_break_then_a_space_in_the_back_half():
    assert split_at_breaks("aaaaaa\nbb cc dd", 10) == ["aaaaaa", "bb cc dd"]
    assert split_at_breaks("aaaaaa bb\ncccccccccc", 10) == ["aaaaaa bb", "cccccccccc"]
    assert split_at_breaks("aaaaaaa bbbb", 10) == ["aaaaaaa", "bbbb"]


def test_text_without_breaks_is_cut_hard_and_nothing_is_lost():
    assert split_at_breaks("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_each_piece_fits_by_the_callers_measure():
    pieces = split_at_breaks("&" * 30, 10, lambda char: len(render.escape_mrkdwn(char)))
    assert "".join(pieces) == "&" * 30
    assert all(len(render.escape_mrkdwn(piece)) <= 10 for piece in pieces)


def test_a_body_ending_in_a_long_run_of_spaces_posts_no_empty_section():
    # Slack refuses a section whose text is empty (invalid_blocks): the whole message would be lost.
    body = "a" * 2000 + " " * 3000
    sections = [section for message in message_parts(body) for section in message]
    assert sections and all(section.strip() for section in sections)
    assert all(len(render.escape_mrkdwn(section)) <= SECTION_LIMIT for section in sections)
