"""Refresh checks: Trusted Advisor is asked to refresh what it may, and each refresh is followed
until it ends, when the updated digest is posted in the digest's thread.

The followed refreshes are recorded in the store before anyone relies on them, so that the scheduler
worker (worker.py) still posts the follow-up after a restart, and never posts it twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from bot.accounts.config import Account
from bot.accounts.errors import AccountsUnreachable
from bot.aws.gateway import SupportGateway
from bot.digest.pending import PendingRefresh, RefreshOutcome, pending_key
from bot.digest.schedule import Schedules
from bot.digest.service import DigestService
from bot.digest.shaping import RefreshReport
from bot.domain import RefreshStatus, parse_aws_time
from bot.errors import AwsError, BotError
from bot.pool import map_in_callers_context
from bot.store.backend import Store, Table
from bot.store.journal import Journal
from bot.work import Job, JournalWork

logger = logging.getLogger(__name__)

# AWS answers InvalidParameterValue when asked to refresh (or for the refresh status of) a check
# that Trusted Advisor refreshes by itself; the code's spelling differs between endpoints.
AUTO_REFRESH_CODES = frozenset({"InvalidParameterValue", "InvalidParameterValueException"})
REFRESH_RUNNING = frozenset({"enqueued", "processing", "in_progress"})
REFRESH_POLL_SECONDS = 10.0  # the AWS user guide's recommended polling interval
REFRESH_DEADLINE = timedelta(minutes=30)
PARALLEL_ACCOUNTS = 4  # a roll-up's accounts refreshed at once, as the roll-up collects them

# Records of the "digests" table beside the channel IDs (which never start with "@").
AUTO_REFRESH_KEY = "@auto-refresh"  # checks learned to refresh by themselves
PENDING_REFRESHES_KEY = "@refreshes"  # refreshes whose follow-up the worker still owes
REFRESH_KIND = "digest_refresh"  # work journal records: a click on Refresh checks being carried out

Asked = Callable[[str, RefreshOutcome], RefreshOutcome]  # notes one account's outcome as progress


class CheckRefresher:
    """Starts the refreshes a digest's "Refresh checks" button asks for, and follows them to the
    follow-up; reads the digest service's clock and gateway, and posts through it in the zone of the
    channel's schedule."""

    def __init__(
        self, digests: DigestService, schedules: Schedules, store: Store, *, journal: Journal, runner: JournalWork
    ) -> None:
        self.digests = digests
        self.schedules = schedules
        self.store = store
        self.journal = journal
        self.runner = runner
        runner.handle(REFRESH_KIND, self)
        self.poll_seconds = REFRESH_POLL_SECONDS
        self.deadline = REFRESH_DEADLINE

    @property
    def table(self) -> Table:
        # Beside each channel's digest state in the "digests" table (channel IDs never start with "@").
        return self.store.table("digests")

    def learned_automatic(self) -> set[str]:
        return set(self.table.get(AUTO_REFRESH_KEY) or [])

    def _learn_automatic(self, check_ids: Iterable[str]) -> None:
        ids = set(check_ids)
        if ids:
            self.table.update(AUTO_REFRESH_KEY, lambda known: sorted(set(known or []) | ids), [])

    def refresh_statuses(self, check_ids: Sequence[str], gateway: SupportGateway | None = None) -> list[RefreshStatus]:
        """Refresh statuses of many checks in one call; a check that refreshes by itself fails the
        whole call, so the batch is split to find it, and it is remembered and left out next time."""
        if not check_ids:
            return []
        gateway = gateway or self.digests.gateway
        try:
            return gateway.trusted_advisor_refresh_statuses(check_ids)
        except AwsError as error:
            if error.code not in AUTO_REFRESH_CODES:
                raise
            if len(check_ids) == 1:
                self._learn_automatic(check_ids)
                return []
        middle = len(check_ids) // 2
        return self.refresh_statuses(check_ids[:middle], gateway) + self.refresh_statuses(check_ids[middle:], gateway)

    def refresh(self, channel: str, thread_ts: str, user: str, account: str = "") -> RefreshOutcome:
        """Ask Trusted Advisor to refresh every check that may be refreshed now, in the digest's account
        (`account` as its button names it: "" the channel's default, an alias, or "all" for every
        account the channel may use, each refused unless usable there); the scheduler worker then
        waits for them and posts the follow-up in the digest's thread.

        The click is a work journal record before any AWS call, its progress saved account by account:
        a bot killed among the calls has them made again at its next start (or by another replica;
        a refresh asked twice is harmless at AWS), and the follow-up is still owed, once."""
        self.digests.accounts_for(channel, account)  # refused here, before anything is recorded
        data = {"channel": channel, "thread_ts": thread_ts, "user": user, "account": account}
        data["started_at"] = self.digests.clock().isoformat()
        key = f"refresh:{channel}:{thread_ts}:{time.time_ns()}"
        lease = self.journal.record(key, REFRESH_KIND, f"digest-refresh:{channel}:{thread_ts}", data)
        if lease is None:
            return RefreshOutcome(already_pending=True)
        return RefreshOutcome.from_record(self.runner.run(lease))

    # The journal's handler of a click (bot.work.Handler) ------------------------------------

    def run(self, job: Job) -> dict[str, Any]:
        channel, thread_ts, account = job.data["channel"], job.data["thread_ts"], job.data["account"]
        done: dict[str, Any] = dict(job.progress.get("accounts") or {})
        if not done and pending_key(channel, thread_ts) in self._pending():
            return RefreshOutcome(already_pending=True).to_record()
        targets = self.digests.accounts_for(channel, account)
        lock = threading.Lock()

        def asked(alias: str, outcome: RefreshOutcome) -> RefreshOutcome:
            with lock:  # accounts of a roll-up end in parallel: one progress record, each added once
                done[alias] = outcome.to_record()
                job.save(accounts=dict(done))
            return outcome

        if len(targets) <= 1:
            alias = targets[0].alias if targets else ""
            outcome = self._outcome_in(alias, done, asked)
        else:
            outcome = self._refresh_all(targets, done, asked)
        if outcome.followed:
            now = self.digests.clock()
            started_at = parse_aws_time(job.data.get("started_at")) or now
            pending = PendingRefresh(
                channel=channel,
                thread_ts=thread_ts,
                checks=dict(outcome.followed_in),
                user=job.data.get("user", ""),
                started_at=started_at,
                next_poll_at=now + timedelta(seconds=self.poll_seconds),
                deadline=started_at + self.deadline,
                account=account,
                job=job.entry.key,
            )
            # Recorded before this record ends: a restart in between finds it (and does not add another).
            if not self._save_pending(pending, only_if_absent=True):
                return RefreshOutcome(already_pending=True).to_record()
            self.schedules.wake()  # the worker follows the refresh to its follow-up
        return outcome.to_record()

    def failed(self, job: Job, error: BotError) -> None:
        # Resumed after a restart, nobody waits for the answer: the clicker was told of nothing yet.
        logger.warning("refresh of %s's digest not started: %s", job.data.get("channel"), error)

    def _outcome_in(self, alias: str, done: dict[str, Any], asked: Asked) -> RefreshOutcome:
        if alias in done:
            return RefreshOutcome.from_record(done[alias])
        outcome = self._refresh_in(alias)
        return asked(alias, replace(outcome, followed_in=((alias, outcome.followed),) if outcome.followed else ()))

    def _refresh_all(self, accounts: Sequence[Account], done: dict[str, Any], asked: Asked) -> RefreshOutcome:
        """Every account at once; one that cannot be asked is named and never stops the others."""

        def one(account: Account) -> RefreshOutcome:
            try:
                return self._outcome_in(account.alias, done, asked)
            except AwsError as error:
                problem = (account.alias, self.digests.account_id_of(account), error.code or error.key)
                return asked(account.alias, RefreshOutcome(unreachable=(problem,)))

        with ThreadPoolExecutor(max_workers=min(PARALLEL_ACCOUNTS, len(accounts))) as pool:
            outcomes = map_in_callers_context(pool, one, accounts)
        if all(o.unreachable for o in outcomes):
            raise AccountsUnreachable([u for o in outcomes for u in o.unreachable])
        return RefreshOutcome.merged(outcomes)

    def _refresh_in(self, alias: str) -> RefreshOutcome:
        """Refresh what may be refreshed in one account ("" the gateway's default)."""
        gateway = self.digests.gateway.in_account(alias)
        checks = gateway.trusted_advisor_checks(self.digests.language)
        automatic = self.learned_automatic()
        candidates = [c.check_id for c in checks if c.check_id not in automatic]
        statuses = self.refresh_statuses(candidates, gateway)
        running = tuple(s.check_id for s in statuses if s.status in REFRESH_RUNNING)
        waiting = [
            (s.check_id, s.millis_until_next_refreshable)
            for s in statuses
            if s.status not in REFRESH_RUNNING and s.millis_until_next_refreshable > 0
        ]
        refreshable = [
            s.check_id for s in statuses if s.status not in REFRESH_RUNNING and s.millis_until_next_refreshable <= 0
        ]
        started: list[str] = []
        learned: list[str] = []
        failed = 0
        for index, check_id in enumerate(refreshable):
            try:
                status = gateway.refresh_trusted_advisor_check(check_id)
            except AwsError as error:
                if error.code in AUTO_REFRESH_CODES:
                    learned.append(check_id)
                elif error.retryable:
                    # Throttled, or AWS in trouble: what was started is followed, the rest can wait.
                    logger.warning("refresh stopped after %d checks: %s", len(started), error)
                    failed += len(refreshable) - index
                    break
                else:
                    failed += 1
                continue
            if status.status not in REFRESH_RUNNING and status.millis_until_next_refreshable > 0:
                waiting.append((check_id, status.millis_until_next_refreshable))
            else:
                started.append(check_id)
        self._learn_automatic(learned)
        return RefreshOutcome(
            started=tuple(started),
            running=running,
            automatic=len(self.learned_automatic() & {c.check_id for c in checks}),
            waiting=tuple(waiting),
            failed=failed,
        )

    # Followed refreshes live in one record, so that a worker tick reads one small value.

    def _pending(self) -> dict[str, Any]:
        record = self.table.get(PENDING_REFRESHES_KEY)
        return record if isinstance(record, dict) else {}

    def _save_pending(self, pending: PendingRefresh, *, only_if_absent: bool = False) -> bool:
        saved = False

        def change(record: Any) -> dict[str, Any]:
            nonlocal saved
            current = dict(record) if isinstance(record, dict) else {}
            if only_if_absent and pending.key in current:
                return current
            current[pending.key] = pending.to_record()
            saved = True
            return current

        self.table.update(PENDING_REFRESHES_KEY, change, {})
        return saved

    def _drop_pending(self, pending: PendingRefresh) -> None:
        self.table.update(
            PENDING_REFRESHES_KEY,
            lambda record: {k: v for k, v in (record or {}).items() if k != pending.key},
            {},
        )

    def pending_refreshes(self) -> list[PendingRefresh]:
        return [PendingRefresh.from_record(r) for r in self._pending().values() if isinstance(r, dict)]

    def next_refresh_poll(self) -> datetime | None:
        times = [p.next_poll_at for p in self.pending_refreshes() if not p.posting]
        return min(times) if times else None

    def poll_refreshes(self, now: datetime | None = None) -> int:
        """Check the followed refreshes that are due and settle those that are over (follow-up posted,
        or dropped when Slack refused it or AWS cannot give what it needs). Returns how many were settled."""
        now = now or self.digests.clock()
        posted = 0
        for pending in self.pending_refreshes():
            if pending.posting:
                # A follow-up was being posted when the bot stopped; posting again could double it.
                logger.warning("refresh follow-up in %s may not have been posted; not retried", pending.channel)
                self._drop_pending(pending)
                continue
            if pending.next_poll_at > now or self._click_unfinished(pending):
                continue
            if self._follow_up(pending, now):
                posted += 1
            else:
                self._save_pending(replace(pending, next_poll_at=now + timedelta(seconds=self.poll_seconds)))
        return posted

    def _click_unfinished(self, pending: PendingRefresh) -> bool:
        # Settled before its click's record ends, a rerun of that record would note it owed again.
        entry = self.journal.get(pending.job) if pending.job else None
        return entry is not None and not entry.finished

    def _refresh_report(self, pending: PendingRefresh, now: datetime) -> RefreshReport | None:
        """None while the refresh is still under way and before its deadline. With several accounts,
        one whose progress AWS will not give counts as unfinished (raised only when it may pass)."""
        statuses: list[str] = []
        unknown = 0
        for alias, check_ids in pending.checks.items():
            gateway = self.digests.gateway.in_account(alias)
            try:
                statuses += [s.status for s in self.refresh_statuses(list(check_ids), gateway)]
            except AwsError as error:
                if len(pending.checks) == 1 or self._worth_waiting(error, pending, now):
                    raise
                logger.warning("refresh of %s in %s not followed to its end: %s", pending.channel, alias, error)
                unknown += len(check_ids)
        running = sum(1 for s in statuses if s in REFRESH_RUNNING)
        if running and now < pending.deadline:
            return None
        return RefreshReport(
            succeeded=sum(1 for s in statuses if s == "success"),
            abandoned=sum(1 for s in statuses if s == "abandoned"),
            unfinished=running + unknown,
        )

    def _follow_up(self, pending: PendingRefresh, now: datetime) -> bool:
        """Post the updated digest in the thread once the refresh is over; False: look again later.

        AWS failing is waited out only while it may pass (a retryable error) and until the deadline:
        then the refresh counts as unfinished, and a follow-up that cannot be collected is dropped.
        """
        try:
            report = self._refresh_report(pending, now)
        except AwsError as error:
            if self._worth_waiting(error, pending, now):
                logger.warning("refresh follow-up for %s postponed: %s", pending.channel, error)
                return False
            logger.warning("refresh of %s not followed to its end: %s", pending.channel, error)
            report = RefreshReport(unfinished=len(pending.check_ids))
        except BotError as error:
            # An account it followed is no longer served (the accounts file changed): show nothing of it.
            logger.warning("refresh follow-up for %s dropped: %s", pending.channel, error)
            self._drop_pending(pending)
            return True
        if report is None:
            return False
        try:
            zone = self.schedules.zone_for(pending.channel)
            snapshot, blocks, text = self.digests.prepare(
                pending.channel, zone=zone, refresh=report, account=pending.account
            )
        except AwsError as error:
            if self._worth_waiting(error, pending, now):
                logger.warning("refresh follow-up for %s postponed: %s", pending.channel, error)
                return False
            logger.warning("refresh follow-up for %s dropped: %s", pending.channel, error)
            self._drop_pending(pending)
            return True
        except BotError as error:
            # The account may no longer be used in this channel (the accounts file changed): show nothing.
            logger.warning("refresh follow-up for %s dropped: %s", pending.channel, error)
            self._drop_pending(pending)
            return True
        self._save_pending(replace(pending, posting=True))
        try:
            self.digests.publish(pending.channel, snapshot, blocks, text, thread_ts=pending.thread_ts)
        except BotError as error:
            logger.warning("refresh follow-up for %s not posted: %s", pending.channel, error)
        finally:
            self._drop_pending(pending)
        return True

    @staticmethod
    def _worth_waiting(error: AwsError, pending: PendingRefresh, now: datetime) -> bool:
        return error.retryable and now < pending.deadline
