"""What the poller remembers of each followed case, durably: the records of the store's "sync" table.

A case's SyncState holds the status its threads last heard of, a watermark with the keys of recently
handled communications, and its pending Deliveries: the intent to post, written before anything is
posted, with each Target's progress (parts Slack confirmed, file IDs) written as Slack answers.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.domain import AttachmentRef, Communication, parse_aws_time
from bot.store.backend import UNCHANGED, StoreError
from bot.store.lease import Leases, replica_id

if TYPE_CHECKING:
    from bot.store.backend import Store

logger = logging.getLogger(__name__)

# AWS may list a communication a little after one that is newer; keys are remembered this far back
# from the newest handled one, and anything older that was never seen counts as history.
LATE_WINDOW = timedelta(minutes=10)
# A case's sync lease (replicas only), renewed at every save of its state: longer than any step of a
# sync between two saves (a post, a file from AWS to Slack).
SYNC_LEASE_SECONDS = 60.0
SYNC_LEASE_PREFIX = "sync:"
SYNC_HOLD_LIMIT_TERMS = 10  # a sync is kept alive beside its saves for at most this many lease terms
# next_check_at while a resolved case's recheck is settled (see SyncStates.save) is negative: due, as 0
# is (for older replicas too), and this save's own, telling its sync that nothing has written it since.
UNKNOWN_WAKE_RECHECK_SECONDS = 120.0  # a wake-up the store could not tell of: looked at again this soon


# Time --------------------------------------------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(UTC)


def aws_time(moment: datetime) -> str:
    """The ISO 8601 form AWS Support writes (milliseconds, Z)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# Records -----------------------------------------------------------------------------------


@dataclass
class Target:
    """One thread a delivery goes to, and how far it got there."""

    channel: str
    thread_ts: str
    parts: int = 1
    posted: list[int] = field(default_factory=list)  # parts Slack confirmed
    # attachment_id -> {"file_id": str, "done": bool, "skipped": str}
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    dropped: str = ""  # the Slack error that made this thread unreachable
    mention: str = ""  # who a pending-customer-action line calls out

    def texts_done(self) -> bool:
        return bool(self.dropped) or len(set(self.posted)) >= self.parts


@dataclass
class Delivery:
    """A communication or a status change on its way into the threads; written before any post."""

    kind: str  # "communication" | "status"
    key: str
    case_id: str
    display_id: str = ""
    communication: dict[str, Any] | None = None
    status: str = ""
    previous: str = ""
    targets: list[Target] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Delivery:
        raw = dict(raw)
        raw["targets"] = [Target(**t) for t in raw.get("targets", [])]
        return cls(**raw)

    def comm(self) -> Communication:
        raw = dict(self.communication or {})
        raw["attachments"] = tuple(AttachmentRef(a, n) for a, n in raw.get("attachments", []))
        return Communication(**raw)


def communication_record(comm: Communication) -> dict[str, Any]:
    """A communication as a Delivery stores it (the inverse of Delivery.comm)."""
    raw = asdict(comm)
    raw["attachments"] = [[a.attachment_id, a.file_name] for a in comm.attachments]
    return raw


@dataclass
class SyncState:
    """What the poller knows of one followed case. Bounded: `seen` keeps only LATE_WINDOW's keys."""

    case_id: str
    status: str = ""
    watermark: str = ""  # time of the newest communication handled (AWS's ISO form)
    seen: dict[str, str] = field(default_factory=dict)  # key -> time, of recently handled communications
    pending: list[Delivery] = field(default_factory=list)
    full_history: list[str] = field(default_factory=list)  # channels whose thread gets the whole case
    next_check_at: float = 0.0  # resolved and vanished cases are looked at only from then on

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SyncState:
        raw = dict(raw)
        raw["pending"] = [Delivery.from_dict(d) for d in raw.get("pending", [])]
        return cls(**raw)

    @property
    def floor(self) -> datetime | None:
        mark = parse_aws_time(self.watermark)
        return mark - LATE_WINDOW if mark else None

    def is_new(self, comm: Communication) -> bool:
        if comm.key in self.seen:
            return False
        floor, created = self.floor, comm.created_at
        return floor is None or created is None or created > floor

    def mark_seen(self, comm: Communication) -> None:
        created = comm.created_at
        mark = parse_aws_time(self.watermark)
        if created is not None and (mark is None or created > mark):
            self.watermark = aws_time(created)
        self.seen[comm.key] = aws_time(created) if created else self.watermark
        floor = self.floor
        if floor is not None:
            self.seen = {k: t for k, t in self.seen.items() if (parse_aws_time(t) or floor) >= floor}


# In the store ------------------------------------------------------------------------------


def _due_now(state: SyncState | None) -> SyncState | None:
    """A wake-up: a resting (resolved) case is looked at on the next cycle."""
    if state is None or not state.next_check_at:
        return None
    state.next_check_at = 0.0
    return state


class SyncInterrupted(Exception):
    """Slack or AWS failed for now, or another replica syncs the case: its pending deliveries wait for
    its next sync."""

    def __init__(self, reason: str, *, thread_gone: str = "") -> None:
        super().__init__(reason)
        self.thread_gone = thread_gone  # Slack's error when only this thread can take no messages


class SyncStates:
    """The "sync" table (case_id -> SyncState).

    With one process on the store (sqlite), behind a write-through cache: that process is the one
    writer. With replicas sharing it (PostgreSQL), any of them may sync a case (the poller on the
    lease holder, a Refresh click or an event on another), so every read goes to the store, and a
    sync holds the case's lease there (`holding`) from reading its state to its last save: a replica
    that cached a state, or synced beside another, would post an AWS answer again.
    """

    def __init__(self, store: Store, *, lease_seconds: float = SYNC_LEASE_SECONDS) -> None:
        self.store = store
        self.shared = not store.exclusive
        self.lease_seconds = lease_seconds
        self._leases = Leases(store) if self.shared else None
        self.owner = f"{replica_id()}/{uuid.uuid4().hex[:6]}"  # this process's syncs
        self._states: dict[str, SyncState] | None = None
        self._lock = threading.Lock()
        # (case, thread) this process syncs now (holding) -> the next_check_at that sync last read or
        # wrote: a wake-up another replica made meanwhile must outlive the sync's saves.
        self._held: dict[tuple[str, int], float] = {}

    def all(self) -> dict[str, SyncState]:
        if self.shared:
            return self._read_all()
        with self._lock:
            if self._states is None:
                self._states = self._read_all()
            return self._states

    def get(self, case_id: str) -> SyncState | None:
        if self.shared:
            raw = self.store.table("sync").get(case_id)
            state = SyncState.from_dict(raw) if raw else None
            if (case_id, threading.get_ident()) in self._held:
                self._held[case_id, threading.get_ident()] = state.next_check_at if state else 0.0
            return state
        return self.all().get(case_id)

    @contextmanager
    def holding(self, case_id: str) -> Iterator[bool]:
        """Whether this process may sync the case now: always with one process; with replicas, while
        it holds the case's lease (False: another replica syncs it, and posts what is new)."""
        if self._leases is None:
            yield True
            return
        leases, name = self._leases, SYNC_LEASE_PREFIX + case_id
        if not leases.acquire(name, self.owner, self.lease_seconds).held_by(self.owner):
            yield False
            return
        # Renewed beside the sync too, not only at its saves: one step may outlast the lease (a post
        # Slack answers 429 is resent after Retry-After, a large file's upload).
        done = threading.Event()

        def keep() -> None:
            # Bounded: a sync stuck for good (a call without a timeout) must not hold the case from
            # every other replica for as long as this process lives.
            give_up_at = time.monotonic() + SYNC_HOLD_LIMIT_TERMS * self.lease_seconds
            while not done.wait(self.lease_seconds / 3):
                if time.monotonic() >= give_up_at:
                    logger.warning(
                        "sync of %s still running after %.0f s: its lease is left to run out",
                        case_id,
                        SYNC_HOLD_LIMIT_TERMS * self.lease_seconds,
                    )
                    return
                try:
                    if not leases.renew(name, self.owner, self.lease_seconds).held_by(self.owner):
                        return  # the next save says so
                except Exception as error:  # noqa: BLE001 - a renewal that failed: the next one, or the lease, tells
                    logger.warning("could not renew the sync lease of %s: %s", case_id, error)

        keeper = threading.Thread(target=keep, name=f"sync-lease-{case_id[-8:]}", daemon=True)
        keeper.start()
        sync = (case_id, threading.get_ident())
        self._held[sync] = 0.0
        try:
            yield True
        finally:
            self._held.pop(sync, None)
            done.set()
            keeper.join()
            try:
                if self.store.table("sync").get(case_id) is None:
                    self.store.table("leases").delete(name)  # the case is no longer followed
                else:
                    leases.release(name, self.owner)
            except StoreError as error:  # it runs out by itself
                logger.warning("could not give back the sync lease of %s: %s", case_id, error)

    def save(self, state: SyncState, *, woken_since_read: Callable[[], bool] | None = None) -> None:
        """With replicas, only inside `holding`: raises SyncInterrupted when the lease ran out and
        another replica may hold the case now. `woken_since_read`: whether a reply woke the case since
        the snapshot this state comes from was read, which makes a recheck due at once."""
        if self._leases is None:  # one process: nobody else writes it
            if woken_since_read is not None and state.next_check_at and woken_since_read():
                state.next_check_at = 0.0
            self.store.table("sync").put(state.case_id, asdict(state))
            self.all()[state.case_id] = state
            return
        if woken_since_read is None or not state.next_check_at:
            self._save_shared(state, self._leases)
            return
        # A recheck (a resolved case) is settled only once the save is committed: saved as due, then
        # the wake-up time is read, then the recheck written if nothing woke the case meanwhile and the
        # state is still as saved. A wake-up noted before the read is seen by it; one noted after it
        # finds the state due or the recheck written, and makes it due (`change` is atomic). A store
        # that refuses the read or the write leaves the case due, or looked at again soon.
        recheck = state.next_check_at
        provisional = -time.time()  # no other save's: a sync whose lease ran out meanwhile settles nothing
        state.next_check_at = provisional
        self._save_shared(state, self._leases)
        try:
            woken: bool | None = woken_since_read()
        except StoreError as error:
            logger.warning("could not tell whether a reply woke %s: looked at again soon (%s)", state.case_id, error)
            woken = None
        if woken:
            return  # due, as saved
        settled = recheck if woken is False else min(recheck, time.time() + UNKNOWN_WAKE_RECHECK_SECONDS)

        def settle(current: SyncState | None) -> SyncState | None:
            if current is None or current.next_check_at != provisional:
                return None  # woken meanwhile (0), or forgotten
            current.next_check_at = settled
            return current

        try:
            self.change(state.case_id, settle)
        except StoreError as error:
            logger.warning("could not settle the recheck of %s: it is due (%s)", state.case_id, error)
            return
        state.next_check_at = settled
        if (sync := (state.case_id, threading.get_ident())) in self._held:
            self._held[sync] = settled

    def _save_shared(self, state: SyncState, leases: Leases) -> None:
        name = SYNC_LEASE_PREFIX + state.case_id
        if not leases.renew(name, self.owner, self.lease_seconds).held_by(self.owner):
            raise SyncInterrupted(f"case {state.case_id}: its sync lease ran out; another replica may sync it")
        sync = (state.case_id, threading.get_ident())
        known_check = self._held.get(sync, 0.0)

        def with_changes_made_meanwhile(raw: Any) -> Any:
            # What `change` did on another replica since this sync read the state (it holds no lease):
            # a wake-up (a reply reopened the resolved case) and a watched thread's channel.
            if isinstance(raw, dict):
                if known_check and not raw.get("next_check_at"):
                    state.next_check_at = 0.0
                state.full_history.extend(c for c in raw.get("full_history") or [] if c not in state.full_history)
            return asdict(state)

        self.store.table("sync").update(state.case_id, with_changes_made_meanwhile)
        if sync in self._held:
            self._held[sync] = state.next_check_at

    def change(self, case_id: str, changed: Callable[[SyncState | None], SyncState | None]) -> None:
        """One atomic read-modify-write of the case's state, outside a sync (`changed` returns None: no
        change). A sync holding the case on another replica keeps it at its saves (see `save`)."""

        table = self.store.table("sync")
        current = table.get(case_id)
        if changed(SyncState.from_dict(current) if current else None) is None:
            return  # nothing to write: no row lock taken (a wake-up of a case already due, or not followed)

        def apply(raw: Any) -> Any:
            state = changed(SyncState.from_dict(raw) if raw else None)
            # None: nothing to write (the state forgotten meanwhile stays absent, not a null row).
            return asdict(state) if state is not None else UNCHANGED

        written = table.update(case_id, apply)
        if not self.shared and written:
            self.all()[case_id] = SyncState.from_dict(written)

    def wake(self, case_id: str) -> None:
        """A resting (resolved) case is looked at on the next cycle (a reply from Slack reopens it)."""
        self.change(case_id, _due_now)

    def delete(self, case_id: str) -> None:
        self.store.table("sync").delete(case_id)
        if not self.shared:
            self.all().pop(case_id, None)

    def _read_all(self) -> dict[str, SyncState]:
        return {key: SyncState.from_dict(raw) for key, raw in self.store.table("sync").items() if raw}
