"""Leases on both backends: acquire, renew, expiry, takeover, release; never two holders. On PostgreSQL
also across processes (kill -9 the holder) and by the database's clock, whatever a replica's says."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator

import pytest

from bot.store.backend import Store
from bot.store.lease import Lease, Leases, replica_id
from tests.store import lease_procs
from tests.store.test_contract import run_together

NAME = "background"


def wait_until_expired(leases: Leases, timeout: float = 30) -> Lease:
    deadline = time.monotonic() + timeout
    while True:
        lease = leases.current(NAME)
        if lease.free:
            return lease
        assert time.monotonic() < deadline, "the lease never expired"
        time.sleep(0.05)


def test_a_free_lease_is_taken_and_held_against_others(store: Store) -> None:
    leases = Leases(store)

    first = leases.acquire(NAME, "replica-a", ttl=60)
    second = leases.acquire(NAME, "replica-b", ttl=60)

    assert first.held_by("replica-a") and first.holder == "replica-a"
    assert 59 < first.remaining <= 60
    assert not second.held_by("replica-b")
    assert second.holder == "replica-a" and second.expires_at == first.expires_at
    assert leases.current(NAME).holder == "replica-a"


def test_renewing_extends_only_the_holders_lease(store: Store) -> None:
    leases = Leases(store)
    taken = leases.acquire(NAME, "replica-a", ttl=30)

    renewed = leases.renew(NAME, "replica-a", ttl=60)
    refused = leases.renew(NAME, "replica-b", ttl=60)
    again = leases.acquire(NAME, "replica-a", ttl=60)

    assert renewed.held_by("replica-a") and renewed.expires_at > taken.expires_at
    assert renewed.since == taken.since, "a renewal keeps when the holder took it"
    assert not refused.held_by("replica-b") and refused.expires_at == renewed.expires_at
    assert again.held_by("replica-a") and again.since == taken.since


def test_an_expired_lease_is_taken_over_and_its_old_holder_cannot_renew_it(store: Store) -> None:
    leases = Leases(store)
    leases.acquire(NAME, "replica-a", ttl=0.3)
    assert not leases.acquire(NAME, "replica-b", ttl=60).held_by("replica-b")

    wait_until_expired(leases)
    late = leases.renew(NAME, "replica-a", ttl=60)
    taken = leases.acquire(NAME, "replica-b", ttl=60)

    assert not late.held_by("replica-a"), "an expired holder must stop and acquire anew"
    assert taken.held_by("replica-b") and taken.since > 0
    assert not leases.renew(NAME, "replica-a", ttl=60).held_by("replica-a")
    assert leases.current(NAME).holder == "replica-b"


def test_release_frees_the_lease_at_once_but_only_for_its_holder(store: Store) -> None:
    leases = Leases(store)
    leases.acquire(NAME, "replica-a", ttl=60)

    assert leases.release(NAME, "replica-b") is False
    assert leases.current(NAME).holder == "replica-a"
    assert leases.release(NAME, "replica-a") is True
    assert leases.current(NAME).free
    assert leases.acquire(NAME, "replica-b", ttl=60).held_by("replica-b")
    assert leases.release(NAME, "replica-a") is False
    assert leases.current(NAME).held_by("replica-b")


def test_leases_are_independent_by_name(store: Store) -> None:
    leases = Leases(store)

    assert leases.acquire("background", "replica-a", ttl=60).held_by("replica-a")
    assert leases.acquire("other", "replica-b", ttl=60).held_by("replica-b")


def test_owners_contending_at_once_never_both_hold(store: Store) -> None:
    leases = Leases(store)
    won: list[str] = []

    def contend(n: int) -> None:
        for _ in range(20):
            if leases.acquire(NAME, f"replica-{n}", ttl=60).held_by(f"replica-{n}"):
                won.append(f"replica-{n}")

    run_together(8, contend)

    assert len(set(won)) == 1, won
    assert leases.current(NAME).holder == won[0]


def test_a_bad_ttl_is_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        Leases(store).acquire(NAME, "replica-a", ttl=0)


def test_the_replica_id_names_host_and_process_and_stays_fixed() -> None:
    assert replica_id() == replica_id()
    host, pid, suffix = replica_id().rsplit(":", 2)
    assert host and pid == str(os.getpid()) and len(suffix) == 6


# PostgreSQL alone -------------------------------------------------------------------------------


@pytest.fixture
def pg(pg_url: str) -> Iterator[Store]:
    from bot.store.postgres import PostgresStore

    opened = PostgresStore.connect(pg_url)
    try:
        yield opened
    finally:
        opened.close()


def test_expiry_is_measured_by_the_databases_clock_not_the_replicas(pg: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A replica whose clock is an hour slow must not make its lease look expired to the others."""
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - 3600)
    taken = Leases(pg).acquire(NAME, "slow-clock-replica", ttl=60)
    monkeypatch.setattr(time, "time", real_time)

    contender = Leases(pg).acquire(NAME, "replica-b", ttl=60)

    assert taken.held_by("slow-clock-replica")
    assert abs(taken.expires_at - (real_time() + 60)) < 30, "expiry by the database's clock"
    assert not contender.held_by("replica-b") and contender.holder == "slow-clock-replica"


@pytest.mark.slow(seconds=7)
def test_processes_contend_and_another_takes_over_soon_after_the_holder_is_killed(pg: Store, pg_url: str) -> None:
    ttl = 3.0
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        status = manager.dict()
        processes = [context.Process(target=lease_procs.hold_lease, args=(pg_url, ttl, status)) for _ in range(2)]
        for process in processes:
            process.start()
        try:
            lease_procs.wait_for(lambda: len(status) == 2, timeout=60)
            lease_procs.wait_for(lambda: lease_procs.running(status), timeout=60)
            time.sleep(ttl)  # a few rounds of renewals against the other one's attempts
            holder = lease_procs.running(status)
            assert len(holder) == 1, f"exactly one runs: {dict(status)}"
            [holder_pid] = holder
            survivor = next(p for p in processes if p.pid != holder_pid)

            killed_at = time.monotonic()
            os.kill(holder_pid, signal.SIGKILL)
            lease_procs.wait_for(lambda: lease_procs.running(status) - {holder_pid}, timeout=ttl + 30)
            takeover = time.monotonic() - killed_at

            assert lease_procs.running(status) - {holder_pid} == {survivor.pid}
            assert Leases(pg).current(NAME).holder.rsplit(":", 2)[1] == str(survivor.pid)
            # ttl after the last renewal, which came at most ttl/3 before the kill; plus slack for a busy machine.
            assert takeover < ttl + 10, takeover
        finally:
            for process in processes:
                process.kill()
                process.join(10)
