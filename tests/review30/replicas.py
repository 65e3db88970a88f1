"""Two harness bots in one test process share replica_id(), so the sync lease cannot tell them apart.
`as_another_replica` gives one bot's sync leases an owner of its own, as a second process would have."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.store.lease import Lease, Leases


class OtherOwner:
    """Leases as a replica with another replica_id() sees them: `owner` is written as owner+tag, and a
    lease held by owner+tag reads back as held by `owner` (so SyncStates' held_by(replica_id()) holds)."""

    def __init__(self, leases: Leases, tag: str) -> None:
        self._leases = leases
        self._tag = tag

    def _back(self, lease: Lease, owner: str) -> Lease:
        return replace(lease, holder=owner) if lease.holder == owner + self._tag else lease

    def acquire(self, name: str, owner: str, ttl: float) -> Lease:
        return self._back(self._leases.acquire(name, owner + self._tag, ttl), owner)

    def renew(self, name: str, owner: str, ttl: float) -> Lease:
        return self._back(self._leases.renew(name, owner + self._tag, ttl), owner)

    def release(self, name: str, owner: str) -> bool:
        return self._leases.release(name, owner + self._tag)

    def current(self, name: str) -> Lease:
        return self._leases.current(name)


def as_another_replica(bot: Any, tag: str = "#other") -> None:
    states = bot.services.sync.states
    assert states.shared, "a bot on PostgreSQL"
    states._leases = OtherOwner(Leases(bot.services.store), tag)
