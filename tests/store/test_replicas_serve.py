"""Two real bots (`python -m bot serve`) on one PostgreSQL database: one runs the poller, /healthz of
both says which; kill -9 it and the other takes over; every AWS reply reaches the thread exactly once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.replicas import LEASE_TTL_SECONDS
from tests.support.replicas import Replica, start_replica, wait_for
from tests.sync.helpers import communication_messages, linked_case, shown_text

# The contract's promise: another replica takes over within 30 s of the holder's death.
TAKEOVER_SECONDS = 30


def holders(replicas: list[Replica]) -> list[Replica]:
    return [replica for replica in replicas if replica.lease().get("held_here")]


@pytest.mark.slow(seconds=30)
def test_two_replicas_one_poller_and_a_takeover_after_kill_9(
    bot_factory: Callable, pg_url: str, fake_slack, sandbox, tmp_path: Path
) -> None:
    setup = bot_factory(env={"DATABASE_URL": pg_url})
    case, thread = linked_case(setup)
    setup.stop()
    replicas = [start_replica(pg_url, fake_slack.api_url, sandbox.url, tmp_path) for _ in range(2)]
    try:
        wait_for(lambda: all(r.health() for r in replicas), 60, "both replicas healthy")
        [holder] = wait_for(lambda: holders(replicas), 60, "a replica holding the lease")
        [standby] = [r for r in replicas if r is not holder]
        wait_for(lambda: standby.lease().get("holder"), 30, "the standby to see the holder")

        # Both say who holds it; only the holder runs the poller.
        for replica in replicas:
            lease = replica.lease()
            assert lease["holder"] == holder.lease()["replica"] and lease["expires_at"]
            assert lease["ttl_seconds"] == LEASE_TTL_SECONDS
        assert str(holder.pid) in holder.lease()["replica"]
        assert standby.lease()["held_here"] is False
        poller = standby.health()["workers"]["poller"]
        assert poller == {"standby": True, "lease_holder": holder.lease()["replica"], "alive": True}
        assert standby.health()["workers"]["scheduler"]["standby"] is True
        assert standby.health()["ok"] is True, "a standby is healthy"

        sandbox.add_aws_reply(case.case_id, "first answer")
        wait_for(lambda: communication_messages(setup, "C1", thread), 30, "the first answer in the thread")
        done = holder.poll_cycles()
        wait_for(lambda: holder.poll_cycles() >= done + 2, 30, "two more cycles")
        assert [shown_text(m) for m in communication_messages(setup, "C1", thread)] == ["first answer"]

        killed_at = time.monotonic()
        holder.kill()
        wait_for(lambda: standby.lease().get("held_here"), TAKEOVER_SECONDS + 30, "the takeover")
        takeover = time.monotonic() - killed_at
        assert standby.lease()["holder"] == standby.lease()["replica"]

        sandbox.add_aws_reply(case.case_id, "second answer")
        wait_for(lambda: len(communication_messages(setup, "C1", thread)) >= 2, 30, "the second answer")
        done = standby.poll_cycles()
        wait_for(lambda: standby.poll_cycles() >= done + 2, 30, "two more cycles")
        assert [shown_text(m) for m in communication_messages(setup, "C1", thread)] == ["first answer", "second answer"]
        assert takeover < TAKEOVER_SECONDS, f"takeover took {takeover:.1f} s"
    finally:
        for replica in replicas:
            replica.stop()
