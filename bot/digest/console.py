"""`python -m bot digest --print [--account <alias>|all]`: the digest on a terminal, without Slack and
without touching any channel's change tracking. The operator may print any account: the channels'
rules are for Slack."""

from __future__ import annotations

import json
from typing import TextIO
from zoneinfo import ZoneInfo

from bot import render
from bot.accounts.errors import UnknownAccount
from bot.digest.layout import digest_blocks, digest_fallback, digest_text
from bot.digest.rollup import collect_rollup, rollup_blocks, rollup_fallback, rollup_text
from bot.digest.service import DigestService
from bot.digest.shaping import build_digest
from bot.errors import BotError


def check_account(digests: DigestService, account: str) -> None:
    """UnknownAccount (naming the served aliases) unless `account` is "", "all" or a served alias."""
    directory = digests.directory
    if account and account != "all" and directory is not None:
        directory.require(account)


def print_digest(
    digests: DigestService, *, zone: ZoneInfo, as_json: bool, out: TextIO, account: str = "", err: TextIO | None = None
) -> int:
    """Write the digest (text, or Block Kit JSON) to `out`: the default account's, the one `account`
    names, or the roll-up of every account ("all"). 1 when AWS could not give it; 2 (one line on
    `err`) for an account the bot does not serve."""
    account = account.strip().lower()
    try:
        check_account(digests, account)
    except UnknownAccount as error:
        (err or out).write(render.console_error_text(error) + "\n")
        return 2
    directory = digests.directory
    try:
        if account == "all" and directory is not None and not directory.single:
            rollup = collect_rollup(digests, None, directory.accounts)
            if as_json:
                payload = {"text": rollup_fallback(rollup), "blocks": rollup_blocks(rollup, zone=zone, buttons=False)}
                out.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
            else:
                out.write(rollup_text(rollup, zone=zone))
            return 0
        chosen = directory.require(account) if account and account != "all" and directory is not None else None
        snapshot = digests.collect(chosen)
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
