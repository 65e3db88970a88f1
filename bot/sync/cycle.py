"""The sync's cycle: every new communication from AWS Support into the case's linked threads, exactly once.

A cycle (CaseSync.run_cycle) follows every linked case with DescribeCases, 100 case IDs a call,
communications included. The five recent communications it returns tell whether anything is new;
DescribeCommunications is called only for a case whose five are all new while more exist. So a
cycle over N quiet cases costs ceil(N/100) Support API calls.

Exactly once, in order (per case, oldest first): new communications (and a status change) become
Deliveries, written to the case's SyncState ("pending", state.py) before anything is posted,
so the intent survives a kill -9. ThreadPoster (poster.py) then posts them, and first
reconciles whatever a crash left pending against the threads themselves.

"Sync this case now" is `CaseSync.sync_case(case_id)`: a button, a watched channel's new card or
an EventBridge event (poller.py) call it; the poller is the backstop that guarantees nothing is
missed, and finishes whatever a `sync_case` left pending.

Snapshots apply in the order they were read: a case read by the poller at the start of a batch
may reach its case's lock after a Refresh click applied a newer read. Each case remembers when
its last applied snapshot was asked for, and an older one is skipped: it would flip the card
back (resolved -> opened) and post a status line that is no longer true.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from bot.aws.gateway import DESCRIBE_CASES_BATCH, SupportGateway
from bot.cases.service import CaseLink, CaseService, outbound_key
from bot.domain import Case, Communication, parse_aws_time
from bot.errors import AwsError, SlackError
from bot.pool import map_in_callers_context
from bot.slack.channels import SlackRefused
from bot.store.backend import UNCHANGED, Store
from bot.sync.plan import LINK_SKEW, status_delivery, target, wants
from bot.sync.poster import ThreadPoster
from bot.sync.state import (
    Delivery,
    SyncInterrupted,
    SyncState,
    SyncStates,
    aws_time,
    communication_record,
    from_epoch,
    utcnow,
)

logger = logging.getLogger(__name__)

# A watched case's thread starts just before the case itself.
OPENING = timedelta(seconds=1)
RESOLVED_RECHECK_SECONDS = 30 * 60.0
MISSING_RECHECK_SECONDS = 6 * 3600.0
# How long a case's state outlives its last link: longer than a card's post takes, Slack's waits and a
# journal record's whole retry deadline (10 minutes) included.
FORGET_UNFOLLOWED_AFTER_SECONDS = 30 * 60.0
PARALLEL_ACCOUNTS = 4  # accounts polled at once: bounded, as each holds a connection pool


class ThreadsRefused(SlackError):
    """Slack refused the bot's messages for a case's threads in a way only its admins can fix
    (a revoked token, a missing scope); the poller tries again, and fails the same way, until then."""

    key = "sync_slack_refused"


@dataclass
class CycleReport:
    followed: int = 0
    checked: int = 0
    posted: int = 0
    aws_calls: int = 0
    seconds: float = 0.0
    failed_cases: int = 0
    # alias -> AWS code: accounts whose cases could not be polled this cycle (the others were).
    failed_accounts: dict[str, str] = field(default_factory=dict)


# The sync ----------------------------------------------------------------------------------


class CaseSync:
    """AWS -> Slack for followed cases. Thread-safe: one case is synced by one thread at a time."""

    def __init__(
        self,
        *,
        store: Store,
        gateway: SupportGateway,
        cases: CaseService,
        states: SyncStates,
        poster: ThreadPoster,
        stopping: threading.Event,
        may_show: Callable[[str, str], bool] = lambda case_id, channel: True,
    ) -> None:
        """`may_show(case_id, channel)`: whether the channel may see the case's content (its account's
        channels, with several accounts): a link made where it may not (by a replica still on an older
        accounts file, or resumed from before a restart) gets nothing."""
        self.may_show = may_show
        self.store = store
        self.gateway = gateway
        self.cases = cases
        self.states = states
        self.poster = poster
        self.stopping = stopping
        self._case_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        # case_id -> time.monotonic() just before the DescribeCases call whose snapshot was last applied.
        self._applied_snapshot_at: dict[str, float] = {}
        # case_id -> time.monotonic() of the first cycle that found its state without a link.
        self._unfollowed_since: dict[str, float] = {}
        self.forget_unfollowed_after = FORGET_UNFOLLOWED_AFTER_SECONDS
        # Per account ("" with one): where the next cycle starts after throttling stopped this one.
        self._resume_from: dict[str, str] = {}
        # Per account, the code of the failure that kept its cases from the last cycle (several accounts).
        self.account_errors: dict[str, str] = {}

    # Public: what any trigger calls ----------------------------------------------------

    def sync_case(self, case_id: str) -> int:
        """Sync this case now (a button, an EventBridge event). Returns messages posted.

        Raises only BotErrors (AWS failures, ThreadsRefused): a sync that Slack or AWS interrupted
        is left pending, and the poller finishes it on its next cycle.
        """
        asked_at = time.monotonic()
        cases = self.gateway.describe_cases([case_id])
        if not cases:
            return 0
        case = cases[0]
        links = [link for link in self.cases.links_for(case_id) if self.may_show(case_id, link.channel)]
        try:
            return self._sync(case, links, asked_at)
        except SyncInterrupted as reason:
            logger.info("sync of %s interrupted, the poller resumes it: %s", case_id, reason)
            return 0
        except SlackRefused as refused:
            raise ThreadsRefused(error=refused.error, display_id=case.display_id) from refused

    def follows(self, case_id: str) -> bool:
        """Whether the case is linked to any thread."""
        return bool(self.cases.links_for(case_id))

    def being_linked(self, case_id: str) -> bool:
        """Whether a card of the case is being posted: its thread will follow the case once linked."""
        return self.cases.card_being_posted(case_id)

    def wake(self, case_id: str) -> None:
        """Look at a resolved case on the next cycle (a reply from Slack reopens it)."""

        with self._case_locks[case_id]:
            # Noted first: a sync saving a recheck meanwhile reads it once its save is committed, or its
            # recheck is committed by the time the wake-up below reads the state.
            self._note_woken(case_id)
            self.states.wake(case_id)

    def _note_woken(self, case_id: str) -> None:
        """When the case was woken, by the store's clock, in its record (older replicas keep unknown keys
        there): a snapshot read before it may show the case resolved when the reply has reopened it."""
        woken_at = self.store.now()

        def stamped(raw: Any) -> Any:
            if not isinstance(raw, dict):
                return UNCHANGED  # not followed: nothing to look at again, and no row written
            return {**raw, "woken_at": max(float(raw.get("woken_at") or 0.0), woken_at)}

        self.store.table("cases").update(case_id, stamped)

    def _woken_since(self, case_id: str, read_at: float) -> bool:
        """Whether the case was woken after a snapshot read at `read_at` (the store's clock)."""
        record = self.store.table("cases").get(case_id) or {}
        return float(record.get("woken_at") or 0.0) > read_at

    def follow_whole_case(self, case: Case, channel: str) -> None:
        """The thread in `channel` gets every communication of the case, its opening included (a watched case)."""
        opened = parse_aws_time(case.time_created) or utcnow()

        def whole(state: SyncState | None) -> SyncState | None:
            state = state or SyncState(case_id=case.case_id, status=case.status, watermark=aws_time(opened - OPENING))
            if channel in state.full_history:
                return None
            # An existing state keeps its watermark: rewinding it would repost in other threads.
            state.full_history.append(channel)
            return state

        with self._case_locks[case.case_id]:
            self.states.change(case.case_id, whole)

    def run_cycle(self) -> CycleReport:
        """One pass over every followed case; with several accounts, the accounts at once (bounded)."""
        started, calls_before = time.monotonic(), self.gateway.calls
        report = CycleReport()
        links = self._links_by_case()
        report.followed = len(links)
        states = self.states.all()  # one read of them all, for this cycle's choice
        self._forget_unfollowed(links, states)
        now = time.time()
        due = [cid for cid in sorted(links) if self._due(states.get(cid), now)]
        groups: dict[str, list[str]] = defaultdict(list)
        for case_id in due:
            groups[self.gateway.case_account(case_id)[0]].append(case_id)
        if len(groups) <= 1:
            # One account: its failure is the cycle's (the poller backs off and reports it).
            for account, ids in groups.items():
                self._poll(account, ids, links, report, states)
        else:
            self._poll_accounts(groups, links, report, states)
        report.aws_calls = self.gateway.calls - calls_before
        report.seconds = time.monotonic() - started
        return report

    def _poll_accounts(
        self,
        groups: dict[str, list[str]],
        links: dict[str, list[CaseLink]],
        report: CycleReport,
        states: dict[str, SyncState],
    ) -> None:
        """Each account on its own thread: one account denied, without a plan or throttled is reported
        in `account_errors` and never delays the others; only when every account fails does the cycle."""

        def one(account: str) -> tuple[CycleReport, AwsError | None]:
            part = CycleReport()
            try:
                self._poll(account, groups[account], links, part, states)
            except AwsError as error:
                return part, error
            return part, None

        failures: list[AwsError] = []
        with ThreadPoolExecutor(max_workers=min(PARALLEL_ACCOUNTS, len(groups)), thread_name_prefix="poll") as pool:
            for account, (part, error) in zip(groups, map_in_callers_context(pool, one, list(groups)), strict=True):
                report.checked += part.checked
                report.posted += part.posted
                report.failed_cases += part.failed_cases
                if error is None:
                    self.account_errors.pop(account, None)
                    continue
                failures.append(error)
                if self.account_errors.get(account) != error.code:
                    logger.warning("account %s: its cases were not polled (%s); the others were", account, error.code)
                self.account_errors[account] = error.code
        report.failed_accounts = dict(self.account_errors)
        if len(failures) == len(groups):
            raise failures[0]

    def _poll(
        self,
        account: str,
        due: list[str],
        links: dict[str, list[CaseLink]],
        report: CycleReport,
        states: dict[str, SyncState],
    ) -> None:
        """The account's due cases, 100 a DescribeCases call; `states` as the cycle read them."""
        for batch in self._batches(due, account):
            if self.stopping.is_set():
                break
            asked_at = time.monotonic()
            try:
                cases = {c.case_id: c for c in self.gateway.describe_cases(batch)}
            except AwsError as error:
                if error.retryable:
                    self._resume_from[account] = batch[0]  # the next cycle starts here, so nobody starves
                raise
            for case_id in batch:
                case = cases.get(case_id)
                if case is None:
                    self._mark_missing(case_id)
                    continue
                report.checked += 1
                try:
                    report.posted += self._sync(case, links[case_id], asked_at, states.get(case_id))
                except SyncInterrupted as reason:
                    report.failed_cases += 1
                    logger.warning("sync of %s interrupted, resuming next cycle: %s", case_id, reason)
                except AwsError as error:
                    if error.retryable:  # throttling is account-wide: stop here, resume here next time
                        self._resume_from[account] = case_id
                        raise
                    report.failed_cases += 1
                    logger.warning("sync of %s failed at AWS (%s); trying again next cycle", case_id, error.code)
        self._resume_from.pop(account, None)

    def stop(self) -> None:
        self.stopping.set()

    def state(self, case_id: str) -> SyncState | None:
        """For health and tests: the stored sync state of a case."""
        return self.states.get(case_id)

    # Which cases, in which order --------------------------------------------------------

    def _links_by_case(self) -> dict[str, list[CaseLink]]:
        # One read of the links table per cycle: links_for() would scan it once per case.
        found: dict[str, list[CaseLink]] = defaultdict(list)
        for raw in self.store.table("links").values():
            if raw:
                link = CaseLink(**raw)
                if self.may_show(link.case_id, link.channel):
                    found[link.case_id].append(link)
        return dict(found)

    def _due(self, state: SyncState | None, now: float) -> bool:
        if state is None or state.pending or state.next_check_at <= now:
            return True
        case_id = state.case_id
        # A resting (resolved) case that Slack reopened (a reply, the Reopen button) is due at once:
        # the case service records the status it showed on the card.
        record = self.store.table("cases").get(case_id) or {}
        return bool(record.get("status")) and record.get("status") != state.status

    def _batches(self, due: list[str], account: str = "") -> Iterator[list[str]]:
        resume_from = self._resume_from.get(account, "")
        if resume_from:
            start = next((i for i, cid in enumerate(due) if cid >= resume_from), 0)
            due = due[start:] + due[:start]
        for start in range(0, len(due), DESCRIBE_CASES_BATCH):
            yield due[start : start + DESCRIBE_CASES_BATCH]

    def _mark_missing(self, case_id: str) -> None:
        # Case data lives 12 months, and a case of another account is never found: look rarely.
        def rarely(state: SyncState | None) -> SyncState:
            # Without a watermark: if it is ever found, it starts as a case seen for the first time.
            state = state or SyncState(case_id=case_id)
            state.next_check_at = time.time() + MISSING_RECHECK_SECONDS
            return state

        with self._case_locks[case_id]:
            self.states.change(case_id, rarely)

    def _forget_unfollowed(self, links: dict[str, list[CaseLink]], states: dict[str, SyncState]) -> None:
        # An unlinked case is no longer synced anywhere; keeping its state would only grow the table.
        # Not at the first cycle that finds it so: a watch writes a case's state (its thread gets the
        # whole case) before the card and its link, and a cycle in between forgot the opening message.
        now = time.monotonic()
        unfollowed = [cid for cid in list(states) if cid not in links]
        self._unfollowed_since = {cid: self._unfollowed_since.get(cid, now) for cid in unfollowed}
        for case_id in unfollowed:
            if now - self._unfollowed_since[case_id] < self.forget_unfollowed_after:
                continue
            with self._case_locks[case_id], self.states.holding(case_id) as held:
                # Linked meanwhile (the snapshot is a few ms old)? Then its state is still needed.
                if held and self.states.get(case_id) is not None and not self.cases.links_for(case_id):
                    self.states.delete(case_id)
                    self._applied_snapshot_at.pop(case_id, None)

    # One case ----------------------------------------------------------------------------

    def _sync(self, case: Case, links: list[CaseLink], asked_at: float, known: SyncState | None = None) -> int:
        """Apply a snapshot of the case read by a DescribeCases call made at `asked_at` (time.monotonic())."""
        with self._case_locks[case.case_id]:
            applied_at = self._applied_snapshot_at.get(case.case_id)
            if applied_at is not None and asked_at < applied_at:
                logger.debug("case %s: skipping a snapshot older than the one applied", case.case_id)
                return 0
            self._applied_snapshot_at[case.case_id] = asked_at
            # `known`: the state as the cycle read it. What changed since (another replica's Refresh
            # left something pending, a wake-up) is seen by the next cycle.
            if self.states.shared and self._quiet(case, known or self.states.get(case.case_id)):
                return 0  # nothing to post or write: no lease to take (most cases, most cycles)
            with self.states.holding(case.case_id) as held:
                if not held:
                    logger.info("case %s: another replica syncs it now, and posts what is new", case.case_id)
                    return 0
                if self.states.shared and self._read_before_the_last_status(case, asked_at):
                    return 0
                return self._apply(case, links, asked_at)

    def _read_before_the_last_status(self, case: Case, asked_at: float) -> bool:
        """With replicas: whether another replica applied a status read after this snapshot (a Refresh
        while this replica's poller posted its batch), which this process's own record cannot know. An
        older snapshot would flip the card back and post a status line that is no longer true. Kept in
        the case's record (older replicas read its known fields only), by the database's clock."""
        # By the database's clock, as the leases are: replicas' own clocks may disagree by seconds.
        read_at = self.store.now() - (time.monotonic() - asked_at)
        applied = self.store.table("cases").get(case.case_id) or {}
        if float(applied.get("status_read_at") or 0.0) > read_at:
            logger.info("case %s: skipping a snapshot older than the status another replica applied", case.case_id)
            self.states.wake(case.case_id)  # a resting case: read again next cycle, not in 30 minutes
            return True
        state = self.states.get(case.case_id)
        if applied and state is not None and case.status and case.status != state.status:

            def stamped(raw: Any) -> Any:
                if not isinstance(raw, dict):
                    return UNCHANGED
                return {**raw, "status_read_at": max(float(raw.get("status_read_at") or 0.0), read_at)}

            self.store.table("cases").update(case.case_id, stamped)
        return False

    @staticmethod
    def _quiet(case: Case, state: SyncState | None) -> bool:
        """Whether _apply would neither post nor write anything for this snapshot and state: nothing
        pending, the same status, no new or missing communication, the same recheck."""
        if state is None or not state.watermark or state.pending:
            return False
        if case.status and case.status != state.status:
            return False
        recent = list(case.recent_communications)
        if any(state.is_new(comm) for comm in recent) or (case.more_communications and not recent):
            return False
        if case.is_resolved:
            return state.next_check_at > time.time()
        return not state.next_check_at

    def _apply(self, case: Case, links: list[CaseLink], asked_at: float) -> int:
        """The snapshot (read at `asked_at`, time.monotonic()) into the case's state and threads; the
        caller holds the case (its lock, its lease)."""
        state = self.states.get(case.case_id)
        fresh = state is None or not state.watermark
        if state is None or not state.watermark:
            state = self._first_state(case, links, state)
        posted = 0
        if state.pending:
            # Left by a crash or a failure: what the threads already show is not posted again.
            self.poster.reconcile(state)
            posted += self.poster.deliver_pending(state)
        status_changed = bool(case.status) and case.status != state.status
        final_sweep = status_changed and case.is_resolved
        new = self._new_communications(case, state, fetch_all=final_sweep)
        deliveries = self._plan(case, state, links, new)
        if status_changed:
            # The card first: it is redrawn in place and harmless to redraw twice.
            self.cases.update_cards(case)
            deliveries.append(self._status_delivery(case, state, links))
            state.status = case.status
        now = time.time()
        next_check = 0.0
        if case.is_resolved:
            # Looked at rarely from now on; a reopened case (a reply from anywhere) resumes.
            next_check = state.next_check_at if state.next_check_at > now else now + RESOLVED_RECHECK_SECONDS
        changed = fresh or bool(new) or status_changed or next_check != state.next_check_at
        state.next_check_at = next_check
        state.pending.extend(deliveries)
        if changed:
            woken_since_read: Callable[[], bool] | None = None
            if case.is_resolved:
                # A reply sent since this snapshot was read has reopened it: looked at again next cycle
                # (checked once the state is saved, so that a wake-up on another replica meanwhile is seen).
                read_at = self.store.now() - (time.monotonic() - asked_at)
                woken_since_read = partial(self._woken_since, case.case_id, read_at)
            # The intent: from here on, a crash neither loses nor doubles.
            self.states.save(state, woken_since_read=woken_since_read)
        return posted + self.poster.deliver_pending(state)

    def _first_state(self, case: Case, links: list[CaseLink], known: SyncState | None) -> SyncState:
        """A case seen for the first time: its threads start where each link started, its status is
        what the card shows."""
        record = self.cases.record(case.case_id)
        state = known or SyncState(case_id=case.case_id)
        state.status = state.status or (record.status if record else "") or case.status
        opened = parse_aws_time(case.time_created)
        starts = [self._thread_start(link, opened) for link in links]
        state.watermark = aws_time(min(starts) if starts else utcnow())
        return state

    @staticmethod
    def _thread_start(link: CaseLink, opened: datetime | None) -> datetime:
        if link.linked_at:
            return from_epoch(link.linked_at) - LINK_SKEW
        return opened - OPENING if opened else utcnow()

    def _new_communications(self, case: Case, state: SyncState, *, fetch_all: bool) -> list[Communication]:
        """The case's communications not handled yet, oldest first; the five recent ones suffice unless
        all five are new and more exist."""
        recent = list(case.recent_communications)
        found = {c.key: c for c in recent if state.is_new(c)}
        oldest = min(recent, key=lambda c: c.time_created) if recent else None
        gap = case.more_communications and (oldest is None or state.is_new(oldest))
        if gap or fetch_all:
            floor = state.floor
            for comm in self.gateway.communications(case.case_id, after_time=aws_time(floor) if floor else None):
                if state.is_new(comm):
                    found.setdefault(comm.key, comm)
        far_future = datetime.max.replace(tzinfo=UTC)
        return sorted(found.values(), key=lambda c: (c.created_at or far_future, c.time_created))

    def _plan(self, case: Case, state: SyncState, links: list[CaseLink], new: list[Communication]) -> list[Delivery]:
        deliveries: list[Delivery] = []
        outbound = self.store.table("outbound")
        for comm in new:
            from_slack = outbound_key(case.case_id, comm.body) in outbound
            targets = [] if from_slack else [target(comm, link) for link in links if wants(state, case, comm, link)]
            if not targets:
                state.mark_seen(comm)  # nothing to post: recorded with the intent, in the same write
                continue
            deliveries.append(
                Delivery(
                    kind="communication",
                    key=comm.key,
                    case_id=case.case_id,
                    display_id=case.display_id,
                    communication=communication_record(comm),
                    targets=targets,
                )
            )
        return deliveries

    def _status_delivery(self, case: Case, state: SyncState, links: list[CaseLink]) -> Delivery:
        record = self.cases.record(case.case_id)
        return status_delivery(case, state, links, opener=record.opened_by if record else "")
