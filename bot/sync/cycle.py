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

import hashlib
import logging
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.aws.gateway import DESCRIBE_CASES_BATCH, SupportGateway
from bot.cases.service import CaseLink, CaseService, outbound_key
from bot.domain import Case, Communication, parse_aws_time
from bot.errors import AwsError, SlackError
from bot.slack.channels import SlackRefused
from bot.store.backend import Store
from bot.sync.poster import SyncInterrupted, ThreadPoster, message_parts
from bot.sync.state import (
    Delivery,
    SyncState,
    SyncStates,
    Target,
    aws_time,
    communication_record,
    from_epoch,
    utcnow,
)

logger = logging.getLogger(__name__)

# A reply may carry a time a little before our clock's linked_at (two clocks, rounding).
LINK_SKEW = timedelta(seconds=2)
# A watched case's thread starts just before the case itself.
OPENING = timedelta(seconds=1)
RESOLVED_RECHECK_SECONDS = 30 * 60.0
MISSING_RECHECK_SECONDS = 6 * 3600.0

USER_ID = re.compile(r"[UW][A-Z0-9]+")


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
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.cases = cases
        self.states = states
        self.poster = poster
        self.stopping = stopping
        self._case_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        # case_id -> time.monotonic() just before the DescribeCases call whose snapshot was last applied.
        self._applied_snapshot_at: dict[str, float] = {}
        self._resume_from = ""

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
        links = self.cases.links_for(case_id)
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

    def wake(self, case_id: str) -> None:
        """Look at a resolved case on the next cycle (a reply from Slack reopens it)."""
        with self._case_locks[case_id]:
            state = self.states.get(case_id)
            if state and state.next_check_at:
                state.next_check_at = 0.0
                self.states.save(state)

    def follow_whole_case(self, case: Case, channel: str) -> None:
        """The thread in `channel` gets every communication of the case, its opening included (a watched case)."""
        with self._case_locks[case.case_id]:
            opened = parse_aws_time(case.time_created) or utcnow()
            state = self.states.get(case.case_id) or SyncState(
                case_id=case.case_id, status=case.status, watermark=aws_time(opened - OPENING)
            )
            if channel not in state.full_history:
                # An existing state keeps its watermark: rewinding it would repost in other threads.
                state.full_history.append(channel)
                self.states.save(state)

    def run_cycle(self) -> CycleReport:
        """One pass over every followed case."""
        started, calls_before = time.monotonic(), self.gateway.calls
        report = CycleReport()
        links = self._links_by_case()
        report.followed = len(links)
        self._forget_unfollowed(links)
        now = time.time()
        due = [cid for cid in sorted(links) if self._due(cid, now)]
        for batch in self._batches(due):
            if self.stopping.is_set():
                break
            asked_at = time.monotonic()
            try:
                cases = {c.case_id: c for c in self.gateway.describe_cases(batch)}
            except AwsError as error:
                if error.retryable:
                    self._resume_from = batch[0]  # the next cycle starts here, so nobody starves
                raise
            for case_id in batch:
                case = cases.get(case_id)
                if case is None:
                    self._mark_missing(case_id)
                    continue
                report.checked += 1
                try:
                    report.posted += self._sync(case, links[case_id], asked_at)
                except SyncInterrupted as reason:
                    report.failed_cases += 1
                    logger.warning("sync of %s interrupted, resuming next cycle: %s", case_id, reason)
                except AwsError as error:
                    if error.retryable:  # throttling is account-wide: stop here, resume here next time
                        self._resume_from = case_id
                        raise
                    report.failed_cases += 1
                    logger.warning("sync of %s failed at AWS (%s); trying again next cycle", case_id, error.code)
        self._resume_from = ""
        report.aws_calls = self.gateway.calls - calls_before
        report.seconds = time.monotonic() - started
        return report

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
                found[link.case_id].append(link)
        return dict(found)

    def _due(self, case_id: str, now: float) -> bool:
        state = self.states.get(case_id)
        if state is None or state.pending or state.next_check_at <= now:
            return True
        # A resting (resolved) case that Slack reopened (a reply, the Reopen button) is due at once:
        # the case service records the status it showed on the card.
        record = self.store.table("cases").get(case_id) or {}
        return bool(record.get("status")) and record.get("status") != state.status

    def _batches(self, due: list[str]) -> Iterator[list[str]]:
        if self._resume_from:
            start = next((i for i, cid in enumerate(due) if cid >= self._resume_from), 0)
            due = due[start:] + due[:start]
        for start in range(0, len(due), DESCRIBE_CASES_BATCH):
            yield due[start : start + DESCRIBE_CASES_BATCH]

    def _mark_missing(self, case_id: str) -> None:
        # Case data lives 12 months, and a case of another account is never found: look rarely.
        with self._case_locks[case_id]:
            # Without a watermark: if it is ever found, it starts as a case seen for the first time.
            state = self.states.get(case_id) or SyncState(case_id=case_id)
            state.next_check_at = time.time() + MISSING_RECHECK_SECONDS
            self.states.save(state)

    def _forget_unfollowed(self, links: dict[str, list[CaseLink]]) -> None:
        # An unlinked case is no longer synced anywhere; keeping its state would only grow the table.
        for case_id in [cid for cid in list(self.states.all()) if cid not in links]:
            with self._case_locks[case_id]:
                # Linked meanwhile (the snapshot is a few ms old)? Then its state is still needed.
                if self.states.get(case_id) is not None and not self.cases.links_for(case_id):
                    self.states.delete(case_id)
                    self._applied_snapshot_at.pop(case_id, None)

    # One case ----------------------------------------------------------------------------

    def _sync(self, case: Case, links: list[CaseLink], asked_at: float) -> int:
        """Apply a snapshot of the case read by a DescribeCases call made at `asked_at` (time.monotonic())."""
        with self._case_locks[case.case_id]:
            applied_at = self._applied_snapshot_at.get(case.case_id)
            if applied_at is not None and asked_at < applied_at:
                logger.debug("case %s: skipping a snapshot older than the one applied", case.case_id)
                return 0
            self._applied_snapshot_at[case.case_id] = asked_at
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
                self.states.save(state)  # the intent: from here on, a crash neither loses nor doubles
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
            targets = (
                []
                if from_slack
                else [self._target(comm, link) for link in links if self._wants(state, case, comm, link)]
            )
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

    @staticmethod
    def _wants(state: SyncState, case: Case, comm: Communication, link: CaseLink) -> bool:
        """Does this thread get this communication? A thread starts with its link, not with the case."""
        if link.channel in state.full_history:
            return True
        created, opened = comm.created_at, parse_aws_time(case.time_created)
        if created is None:
            return True
        if created == opened and comm.submitted_by == case.submitted_by:
            return False  # the opening communication: whoever opened or linked the case has read it
        return not link.linked_at or created > from_epoch(link.linked_at) - LINK_SKEW

    @staticmethod
    def _target(comm: Communication, link: CaseLink) -> Target:
        return Target(channel=link.channel, thread_ts=link.thread_ts, parts=len(message_parts(comm.body)))

    def _status_delivery(self, case: Case, state: SyncState, links: list[CaseLink]) -> Delivery:
        record = self.cases.record(case.case_id)
        opener = record.opened_by if record else ""
        key = hashlib.sha256(f"{case.case_id}\x1f{state.status}\x1f{case.status}\x1f{time.time_ns()}".encode())
        return Delivery(
            kind="status",
            key=key.hexdigest()[:32],
            case_id=case.case_id,
            display_id=case.display_id,
            status=case.status,
            previous=state.status,
            targets=[
                Target(channel=link.channel, thread_ts=link.thread_ts, mention=_user_id(opener or link.linked_by))
                for link in links
            ],
        )


def _user_id(value: str) -> str:
    """Only a Slack user ID becomes a mention; anything else (a watch's marker, an e-mail) stays silent."""
    return value if USER_ID.fullmatch(value or "") else ""
