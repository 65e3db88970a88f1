"""The work journal: every piece of after-ack work that must survive a crash, one JSON record each.

Table "journal": idempotency key -> Entry. The key comes from what Slack gives once per human
action (a message's channel and ts, a view ID, a trigger_id), so a redelivered event or a replayed
request finds the record instead of making a second one: writing the record is the claim.

A record being worked on is leased: a holder (this process's ID, then one job's token) and an
expiry, renewed while the job runs. Nobody touches a record whose lease is live; start-up recovery
and the periodic sweep take only records whose lease ran out, oldest first per thread.

Each change is one atomic read-modify-write of one record (Table.claim, Table.update): a shared
backend implements them as a unique insert and SELECT ... FOR UPDATE, so two processes never both
hold a record.

Records of one order (a case thread) reach AWS oldest first across replicas, not only within one
process's queue: each order has an index record ("~order:" + order) listing its keys in the order
they were noted, and a record's work waits while an older one in it is pending (older_pending).
The index is a hint kept small, the records are the truth: a key whose record is finished or gone
does not count, and is dropped from the index on the way.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from bot.store.backend import StoreError, Table

logger = logging.getLogger(__name__)

PENDING, DONE, FAILED = "pending", "done", "failed"
ORDER_PREFIX = "~order:"  # journal keys come from Slack IDs ("reply:…", "create:…"): never this
LEASE_SECONDS = 60.0
KEEP_SECONDS = 7 * 24 * 3600.0  # Slack redelivers and replays within minutes; a week is plenty


def reference(key: str) -> str:
    """The short reference of a record that travels with what the bot sends (e.g. "7Q2FK3")."""
    return base64.b32encode(hashlib.sha256(key.encode()).digest()).decode()[:6]


@dataclass
class Entry:
    key: str
    kind: str  # which handler runs it (open_case, reply, card, ...)
    order: str  # records with one order (a case thread) run one after another, oldest first
    data: dict[str, Any]  # what the person asked, as noted before the ack
    created_at: float
    state: str = PENDING
    progress: dict[str, Any] = field(default_factory=dict)  # written as the work goes, before each step
    holder: str = ""
    lease_until: float = 0.0
    runs: int = 0
    finished_at: float = 0.0
    outcome: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return reference(self.key)

    @property
    def finished(self) -> bool:
        return self.state != PENDING

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Entry:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


@dataclass(frozen=True)
class Lease:
    """The right to work on one record, until it runs out or is given back."""

    key: str
    holder: str
    # The record's order (its case thread), when the lease was made knowing it: what runs the record
    # right after an ack queues it there without reading the store again on the request's thread.
    order: str | None = field(default=None, compare=False)


class LeaseLost(Exception):
    """Our lease ran out and another worker holds the record now: stop, it carries on."""


class _Missing(Exception):
    pass


class Journal:
    def __init__(
        self,
        table: Table,
        *,
        lease_seconds: float = LEASE_SECONDS,
        sole_owner: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`sole_owner`: no other process can use this store (one BOT_DB_PATH, one process), so a lease
        another process left is a dead one's, taken at once at start instead of after it runs out."""
        self.table = table
        self.owner = uuid.uuid4().hex[:12]
        self.lease_seconds = lease_seconds
        self.sole_owner = sole_owner
        self.clock = clock
        self._held: dict[str, str] = {}
        self._lock = threading.Lock()

    # Claiming and leasing ----------------------------------------------------------------

    def record(self, key: str, kind: str, order: str, data: dict[str, Any]) -> Lease | None:
        """Note a piece of work, leased to the caller; None when the key was noted already."""
        holder = self._new_holder()
        # Indexed before it exists: a record never runs unseen by the younger ones of its order (an
        # index key without a record does not count).
        self._note_order(order, key)
        now = self.clock()
        entry = Entry(key, kind, order, data, created_at=now, holder=holder, lease_until=now + self.lease_seconds)
        try:
            noted = self.table.claim(key, asdict(entry))
        except StoreError as error:
            # The write may have gone through and only its answer been lost (a connection dropped
            # after the commit). Left unheld, the record would wait out its lease, and the younger
            # records of its order behind it.
            found = self._noted_by(key) if error.may_have_written else None
            if found is None:
                raise
            noted = found == holder  # else noted already, by another: as claim() answering False
        if not noted:
            return None
        self._hold(key, holder)
        return Lease(key, holder, order)

    def take(self, key: str, *, at_start: bool = False) -> Lease | None:
        """Lease a pending record nobody holds; None when it is finished or held."""
        holder = self._new_holder()
        taken = False
        order: str | None = None

        def change(raw: Any) -> Any:
            nonlocal taken, order
            if raw is None:
                raise _Missing
            entry = Entry.from_dict(raw)
            if entry.finished or self._held_by_another(entry, at_start):
                return raw
            taken, order = True, entry.order
            now = self.clock()
            return dict(raw, holder=holder, lease_until=now + self.lease_seconds, runs=entry.runs + 1)

        try:
            self.table.update(key, change)
        except _Missing:
            return None
        if not taken:
            return None
        self._hold(key, holder)
        return Lease(key, holder, order)

    def held(self, key: str) -> Lease | None:
        """The lease this process holds on `key` (noted before an ack, worked on after it)."""
        with self._lock:
            holder = self._held.get(key)
        return Lease(key, holder) if holder else None

    def held_count(self) -> int:
        with self._lock:
            return len(self._held)

    def holds(self, lease: Lease) -> bool:
        entry = self.get(lease.key)
        return entry is not None and not entry.finished and entry.holder == lease.holder

    # Progress and outcome ----------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        raw = self.table.get(key)
        return Entry.from_dict(raw) if raw else None

    def save(self, lease: Lease, **progress: Any) -> Entry:
        """Write progress (and renew the lease); raises LeaseLost when the record is no longer ours."""
        return self._change(lease, lambda entry: {"progress": {**entry.progress, **progress}})

    def finish(self, lease: Lease, **outcome: Any) -> Entry:
        return self._end(lease, DONE, outcome)

    def fail(self, lease: Lease, **outcome: Any) -> Entry:
        return self._end(lease, FAILED, outcome)

    def release(self, lease: Lease) -> None:
        """Give the record back unfinished (shutting down): the next sweep or start takes it at once."""
        try:
            with contextlib.suppress(LeaseLost):
                self._change(lease, lambda entry: {"holder": "", "lease_until": 0.0})
        finally:
            self._drop(lease.key)  # a failed write leaves the lease to run out: then anyone takes it

    def renew_held(self) -> int:
        """Renew every lease this process holds (a job may wait in its thread's queue for a while)."""
        with self._lock:
            held = [Lease(key, holder) for key, holder in self._held.items()]
        for lease in held:
            try:
                self._change(lease, lambda entry: {})
            except LeaseLost:
                self._drop(lease.key)
        return len(held)

    def older_pending(self, entry: Entry) -> list[Entry]:
        """The pending records of `entry`'s order noted before it, oldest first: its work waits for them."""
        if entry.order == entry.key:
            return []  # a record alone in its order (a Create case form)
        keys = self._listed(entry.order)
        if entry.key not in keys:
            return []  # noted before orders were indexed
        return self._still_pending(entry.order, keys[: keys.index(entry.key)])

    def note_under(self, index: str, key: str) -> None:
        """List record `key` under `index` too (besides its order), for pending_under() to find."""
        self._note_order(index, key)

    def strike_from(self, index: str, key: str) -> None:
        """Take record `key` off `index`'s list (its work there is done, whether or not the record is)."""
        self._forget_order(index, [key])

    def pending_under(self, index: str) -> list[Entry]:
        """The pending records listed under `index`; finished ones are struck from it."""
        return self._still_pending(index, self._listed(index))

    def _listed(self, order: str) -> list[str]:
        raw = self.table.get(ORDER_PREFIX + order)
        return list(raw.get("keys") or []) if isinstance(raw, dict) else []

    def _still_pending(self, order: str, keys: list[str]) -> list[Entry]:
        """The records of `keys` still pending, in that order; the others are struck from `order`'s list."""
        pending, settled = [], []
        for key in keys:
            entry = self.get(key)
            if entry is None or entry.finished:
                settled.append(key)
            else:
                pending.append(entry)
        if settled:
            self._forget_order(order, settled)
        return pending

    # Finding work ------------------------------------------------------------------------

    def resumable(self, *, at_start: bool = False) -> list[Entry]:
        """Pending records nobody holds, oldest first."""
        found = []
        # Only the pending ones travel: every replica sweeps every 20 s, and a week of finished
        # records listed whole cost 100 to 200 ms of CPU per 10,000 (either backend) beside the acks.
        for key, raw in self.table.items_with("state", PENDING):
            if key.startswith(ORDER_PREFIX):
                continue
            entry = Entry.from_dict(raw)
            if not self._held_by_another(entry, at_start) and entry.key not in self._held_keys():
                found.append(entry)
        return sorted(found, key=lambda e: (e.created_at, e.key))

    def prune(self, keep_seconds: float = KEEP_SECONDS) -> int:
        """Delete finished records older than `keep_seconds`; returns how many."""
        cutoff = self.clock() - keep_seconds
        pruned = 0
        for key, raw in self.table.items():
            if key.startswith(ORDER_PREFIX):
                # An order untouched that long and with nothing pending left: a new record of it
                # writes a fresh one (the window between this read and the delete is the only race).
                idle = isinstance(raw, dict) and float(raw.get("at") or 0) < cutoff
                if raw is None or (idle and not any(self._is_pending(k) for k in raw.get("keys") or [])):
                    self.table.delete(key)
                    pruned += 1
                continue
            finished = isinstance(raw, dict) and raw.get("state") in (DONE, FAILED)
            if raw is None or (finished and (raw.get("finished_at") or raw.get("created_at", 0)) < cutoff):
                self.table.delete(key)
                pruned += 1
        return pruned

    # Inside ------------------------------------------------------------------------------

    def _end(self, lease: Lease, state: str, outcome: dict[str, Any]) -> Entry:
        # Dropped whether or not the write went through: a record this process no longer works on
        # must not be renewed by renew_held(), or its lease never runs out and nobody resumes it.
        try:
            entry = self._change(
                lease,
                lambda entry: {"state": state, "outcome": outcome, "finished_at": self.clock(), "lease_until": 0.0},
            )
        finally:
            self._drop(lease.key)
        try:
            self._forget_order(entry.order, [entry.key])
        except Exception:  # noqa: BLE001 - only a hint: the next younger record of the order drops it
            logger.warning("could not drop %s from its order's index", entry.key, exc_info=True)
        return entry

    def _change(self, lease: Lease, changes: Callable[[Entry], dict[str, Any]]) -> Entry:
        def change(raw: Any) -> Any:
            if raw is None:
                raise LeaseLost(lease.key)
            entry = Entry.from_dict(raw)
            if entry.holder != lease.holder or entry.finished:
                raise LeaseLost(lease.key)
            return {**raw, "lease_until": self.clock() + self.lease_seconds, **changes(entry)}

        try:
            return Entry.from_dict(self.table.update(lease.key, change))
        except LeaseLost:
            self._drop(lease.key)
            raise

    def _note_order(self, order: str, key: str) -> None:
        if order == key:
            return

        def add(raw: Any) -> dict[str, Any]:
            keys = list(raw.get("keys") or []) if isinstance(raw, dict) else []
            return {"keys": keys if key in keys else [*keys, key], "at": self.clock()}

        self.table.update(ORDER_PREFIX + order, add)

    def _forget_order(self, order: str, settled: list[str]) -> None:
        if order in settled:
            return

        def remove(raw: Any) -> Any:
            if not isinstance(raw, dict):
                return raw
            return {**raw, "keys": [k for k in raw.get("keys") or [] if k not in settled]}

        if self.table.get(ORDER_PREFIX + order) is not None:
            self.table.update(ORDER_PREFIX + order, remove)

    def _noted_by(self, key: str) -> str | None:
        """The holder the record of `key` was noted with; None when there is none or the store cannot say."""
        try:
            raw = self.table.get(key)
        except StoreError:
            return None
        return raw.get("holder") if isinstance(raw, dict) else None

    def _is_pending(self, key: str) -> bool:
        raw = self.table.get(key)
        return isinstance(raw, dict) and raw.get("state") == PENDING

    def _held_by_another(self, entry: Entry, at_start: bool) -> bool:
        if not entry.holder or entry.lease_until <= self.clock():
            return False
        # At start, with one process per store, a lease another process left is a dead one's.
        return not (at_start and self.sole_owner and not entry.holder.startswith(self.owner + "/"))

    def _new_holder(self) -> str:
        return f"{self.owner}/{uuid.uuid4().hex[:8]}"

    def _hold(self, key: str, holder: str) -> None:
        with self._lock:
            self._held[key] = holder

    def _drop(self, key: str) -> None:
        with self._lock:
            self._held.pop(key, None)

    def _held_keys(self) -> set[str]:
        with self._lock:
            return set(self._held)
