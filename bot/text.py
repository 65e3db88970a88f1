"""The one text splitter: long text cut into pieces within a limit, at a line or word break when one is near.

AWS communication bodies (bot/cases/records.py) and Slack section texts (bot/sync/poster.py) both use it,
each with its own measure of a character.
"""

from __future__ import annotations

from collections.abc import Callable


def _one(_char: str) -> int:
    return 1


def split_at_breaks(text: str, limit: int, char_size: Callable[[str], int] = _one) -> list[str]:
    """Pieces of `text`, in order, each at most `limit` by `char_size`; only the whitespace at a cut is dropped.

    A cut goes at the last line break in the back half of the room, else the last space there, else
    hard at the limit (a word longer than the room is cut, never lost).
    """
    pieces: list[str] = []
    rest = text
    while sum(map(char_size, rest)) > limit:
        size, cut = 0, 0
        for index, char in enumerate(rest):
            size += char_size(char)
            if size > limit:
                break
            cut = index + 1
        soft = rest.rfind("\n", cut // 2, cut)
        if soft <= 0:
            soft = rest.rfind(" ", cut // 2, cut)
        if soft > 0:
            cut = soft
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip("\n ") if soft > 0 else rest[cut:]
    if rest or not pieces:
        pieces.append(rest)
    return pieces
