"""`digest all`: one roll-up of every account a channel may use — per-account counts, savings and
changes since this channel's previous digest of that account, then the top flagged checks across
accounts, each naming its account. Each account's Trusted Advisor is asked through its own gateway,
the accounts at once; one that cannot be reached is named and never stops the others."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot import render
from bot.accounts.config import Account
from bot.accounts.errors import AccountsUnreachable
from bot.digest.shaping import STATUSES, CheckRow, Digest, RefreshReport, Snapshot, build_digest, urgency
from bot.errors import AwsError
from bot.pool import map_in_callers_context

if TYPE_CHECKING:
    from bot.digest.service import DigestService

PARALLEL_ACCOUNTS = 4
TOP_CHECKS = 10
MAX_ACCOUNT_LINES = 40  # one section each; a message holds 50 blocks


@dataclass(frozen=True)
class AccountDigest:
    alias: str
    label: str  # alias (ID)
    digest: Digest | None
    problem: str = ""  # the AWS code when the account could not be asked
    account_id: str = ""


@dataclass(frozen=True)
class FlaggedCheck:
    row: CheckRow
    label: str


@dataclass(frozen=True)
class RollUp:
    accounts: tuple[AccountDigest, ...]
    collected_at: datetime

    @property
    def snapshots(self) -> tuple[Snapshot, ...]:
        """What to remember per account: only the accounts that answered."""
        return tuple(a.digest.snapshot for a in self.accounts if a.digest is not None)

    @property
    def counts(self) -> dict[str, int]:
        totals = dict.fromkeys(STATUSES, 0)
        for one in self.accounts:
            for status, count in (one.digest.counts if one.digest else {}).items():
                totals[status] = totals.get(status, 0) + count
        return totals

    @property
    def savings_total(self) -> float:
        return sum(a.digest.savings_total for a in self.accounts if a.digest is not None)

    def top(self, limit: int = TOP_CHECKS) -> list[FlaggedCheck]:
        flagged = [FlaggedCheck(row, a.label) for a in self.accounts if a.digest for row in a.digest.flagged]
        flagged.sort(key=lambda f: (urgency(f.row), f.label))
        return flagged[:limit]


def collect_rollup(service: DigestService, channel: str | None, accounts: Sequence[Account]) -> RollUp:
    """Every account's digest at once; `channel` None (the console): no change tracking."""

    def one(account: Account) -> AccountDigest:
        account_id = service.account_id_of(account)
        label = f"{account.alias} ({account_id})"
        try:
            snapshot = service.collect(account)
        except AwsError as error:
            return AccountDigest(account.alias, label, None, error.code or error.key, account_id)
        previous = service.previous(channel, account.alias) if channel is not None else None
        return AccountDigest(account.alias, label, build_digest(snapshot, previous), account_id=account_id)

    with ThreadPoolExecutor(max_workers=min(PARALLEL_ACCOUNTS, len(accounts))) as pool:
        found = tuple(map_in_callers_context(pool, one, accounts))
    if all(a.digest is None for a in found):
        # Nothing to show: say why, naming every account (not only the first one's problem).
        raise AccountsUnreachable([(a.alias, a.account_id, a.problem or "Unreachable") for a in found])
    return RollUp(accounts=found, collected_at=service.clock())


def _context(rollup: RollUp, zone: ZoneInfo, refresh: RefreshReport | None = None) -> dict[str, Any]:
    return {
        "refresh": refresh,
        "r": rollup,
        "accounts": list(rollup.accounts[:MAX_ACCOUNT_LINES]),
        "more_accounts": max(0, len(rollup.accounts) - MAX_ACCOUNT_LINES),
        "counts": rollup.counts,
        "savings": rollup.savings_total,
        "top": rollup.top(),
        "now": rollup.collected_at.astimezone(zone),
    }


def rollup_blocks(
    rollup: RollUp, *, zone: ZoneInfo, refresh: RefreshReport | None = None, buttons: bool = True
) -> list[dict[str, Any]]:
    """`buttons` False: no Refresh checks (the terminal cannot click)."""
    return render.blocks("digest_rollup.json.j2", **_context(rollup, zone, refresh), buttons=buttons)


def rollup_text(rollup: RollUp, *, zone: ZoneInfo) -> str:
    """The roll-up on a terminal (`digest --print --account all`)."""
    template = render.environment().get_template("digest_rollup.txt.j2")
    return template.render(**_context(rollup, zone)).rstrip() + "\n"


def rollup_fallback(rollup: RollUp) -> str:
    return str(render.text("digest_rollup_fallback", accounts=len(rollup.accounts), counts=rollup.counts))
