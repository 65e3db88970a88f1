"""Paging of newest-first listings, as DescribeCases and DescribeCommunications page them."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.sandbox.errors import invalid_parameter
from bot.sandbox.times import parse_time


@dataclass(frozen=True)
class Page:
    """A window on a newest-first listing, as DescribeCases/DescribeCommunications page it."""

    max_results: int
    next_token: str | None = None
    after: datetime | None = None
    before: datetime | None = None


def encode_token(key: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode("ascii")


def decode_token(token: str) -> list[str]:
    """Tokens name the last item returned, so paging stays right while new items arrive."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise invalid_parameter("Invalid pagination token") from exc
    if not isinstance(key, list) or not all(isinstance(part, str) for part in key):
        raise invalid_parameter("Invalid pagination token")
    return key


def within(time_created: str, page: Page) -> bool:
    moment = parse_time(time_created)
    if moment is None:
        return False
    # Both bounds inclusive: a poller that passes its last-seen time gets that item again
    # rather than missing one created in the same millisecond.
    if page.after is not None and moment < page.after:
        return False
    return not (page.before is not None and moment > page.before)


def paginate(items: list[Any], key: Callable[[Any], list[str]], page: Page) -> tuple[list[Any], str | None]:
    """`items` newest first; returns one page and the token for the next, if there is more."""
    if page.next_token:
        last = decode_token(page.next_token)
        items = [item for item in items if key(item) < last]
    chosen = items[: page.max_results]
    token = encode_token(key(chosen[-1])) if len(items) > page.max_results else None
    return chosen, token
