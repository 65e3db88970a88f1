"""Named leases in the store: one replica at a time does a thing (runs the poller), and another one
takes it over when the holder stops renewing.

A lease is one record of the `leases` table: who holds it and until when. Every decision (free?
expired? ours?) is made inside `Table.update`, atomic across processes (a row lock on PostgreSQL, the
one process's lock on sqlite), so two owners never both hold it.

Expiry is measured by the store's clock (`Store.now()`: on PostgreSQL the database's), never by a
replica's own: replicas whose clocks disagree by a minute still agree on when a lease expired. The
clock is read just before the record is locked, so a write delayed behind another's lock can only
make the lease look younger to a contender (never expired early) and end sooner for its holder (never
held too long). A holder still never trusts the record's expiry against its own clock: it counts its
hold from before it asked, with time.monotonic (see bot/replicas.py).
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any

from bot.store.backend import Store

_replica: tuple[int, str] | None = None


def replica_id() -> str:
    """This process among the bot's replicas: host, pid and a short random part (pids repeat across
    containers and restarts). Fixed for the life of the process."""
    global _replica
    if _replica is None or _replica[0] != os.getpid():
        _replica = (os.getpid(), f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}")
    return _replica[1]


@dataclass(frozen=True)
class Lease:
    """A lease as the store saw it at `checked_at` (store clock, seconds since the epoch)."""

    name: str
    holder: str  # "" when nobody holds it
    expires_at: float
    since: float  # when the holder took it (renewals keep it)
    checked_at: float

    def held_by(self, owner: str) -> bool:
        return bool(self.holder) and self.holder == owner and self.expires_at > self.checked_at

    @property
    def free(self) -> bool:
        return not self.holder or self.expires_at <= self.checked_at

    @property
    def remaining(self) -> float:
        """Seconds until it expires (by the store's clock); 0 when it has."""
        return max(0.0, self.expires_at - self.checked_at)


def _record(holder: str, expires_at: float, since: float) -> dict[str, Any]:
    return {"holder": holder, "expires_at": expires_at, "since": since}


class Leases:
    """acquire / renew / release on the store's `leases` table; safe from any thread and process."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._table = store.table("leases")

    def acquire(self, name: str, owner: str, ttl: float) -> Lease:
        """Take the lease when it is free or expired, or extend it when `owner` holds it already.
        Returns the lease as it stands after the call: `held_by(owner)` says whether this call won."""
        _check_ttl(ttl)
        now = self._store.now()

        def take(old: dict[str, Any] | None) -> dict[str, Any]:
            current = _lease(name, old, now)
            if current.free:
                return _record(owner, now + ttl, now)
            if current.holder == owner:
                return _record(owner, now + ttl, current.since)
            return old or {}

        return _lease(name, self._table.update(name, take), now)

    def renew(self, name: str, owner: str, ttl: float) -> Lease:
        """Extend the lease only while `owner` still holds it: a holder whose lease expired must stop
        and acquire it anew (someone else may have run meanwhile). Check `held_by(owner)`."""
        _check_ttl(ttl)
        now = self._store.now()

        def extend(old: dict[str, Any] | None) -> dict[str, Any]:
            current = _lease(name, old, now)
            if current.held_by(owner):
                return _record(owner, now + ttl, current.since)
            return old or {}

        return _lease(name, self._table.update(name, extend), now)

    def release(self, name: str, owner: str) -> bool:
        """Give the lease up at once (a clean shutdown), so another replica need not wait for it to
        expire. True when `owner` held it; someone else's lease is left alone."""
        now = self._store.now()
        released = False

        def give_up(old: dict[str, Any] | None) -> dict[str, Any]:
            nonlocal released
            if _lease(name, old, now).held_by(owner):
                released = True
                return _record("", 0.0, 0.0)
            return old or {}

        self._table.update(name, give_up)
        return released

    def current(self, name: str) -> Lease:
        """The lease as it stands now (a read, for health and benchmarks)."""
        now = self._store.now()
        return _lease(name, self._table.get(name), now)


def _lease(name: str, record: dict[str, Any] | None, now: float) -> Lease:
    record = record or {}
    return Lease(
        name=name,
        holder=str(record.get("holder") or ""),
        expires_at=float(record.get("expires_at") or 0.0),
        since=float(record.get("since") or 0.0),
        checked_at=now,
    )


def _check_ttl(ttl: float) -> None:
    if ttl <= 0:
        raise ValueError(f"a lease's ttl must be positive, not {ttl}")
