"""`python -m bot digest --print`: the digest on a terminal, without Slack and without touching any
channel's change tracking."""

from __future__ import annotations

import json
from typing import TextIO
from zoneinfo import ZoneInfo

from bot import render
from bot.digest.layout import digest_blocks, digest_fallback, digest_text
from bot.digest.service import DigestService
from bot.digest.shaping import build_digest
from bot.errors import BotError


def print_digest(digests: DigestService, *, zone: ZoneInfo, as_json: bool, out: TextIO) -> int:
    """Write the digest (text, or Block Kit JSON) to `out`; 1 when AWS could not give it."""
    try:
        snapshot = digests.collect()
    except BotError as error:
        out.write(render.console_error_text(error) + "\n")
        return 1
    digest = build_digest(snapshot, None)
    if as_json:
        payload = {"text": digest_fallback(digest), "blocks": digest_blocks(digest, zone=zone)}
        out.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(digest_text(digest, zone=zone))
    return 0
