"""Review 16: SharedClaims (PostgreSQL replay claims confirmed after the ack). Each test here fails on f3ab4ea."""

from __future__ import annotations

import time
from typing import Any

import psycopg

from bot.store.backend import StoreError
from tests.cases.helpers import open_case_at_aws, sent_texts
from tests.store.test_replay_claims_shared import FORM, signed_command
from tests.support.harness import BotHarness


def _wait_until(check: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


def _lease_runs_out(pg_url: str, key: str) -> None:
    """What 60 s (LEASE_SECONDS) after the holder stopped renewing does to its journal record."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE kv SET value = jsonb_set(value, '{lease_until}', '0') WHERE table_name = 'journal' AND key = %s",
            (key,),
        )


def _failing_claim_writes(bot: BotHarness, count: int = 1) -> None:
    """The claims writer's next `count` writes fail (a dropped connection, a failover, a deadlock)."""
    table = bot.services.store.table("requests")  # the instance SharedClaims writes with (cached per store)
    real = table.claim_many
    failures = [StoreError("server closed the connection unexpectedly")] * count

    def flaky(items: dict[str, Any], *, durable: bool = True) -> set[str]:
        if failures:
            raise failures.pop()
        return real(items, durable=durable)

    table.claim_many = flaky  # type: ignore[method-assign]


def test_after_a_reply_whose_claim_could_not_be_written_the_case_still_takes_replies(bot_factory, pg_url: str) -> None:
    """The claim's write fails once. The reply was noted before the ack (journal record leased to this
    process), the work that waited for the claim tells the person "Nothing was done; please try again"
    and never calls start_noted. The record stays pending and leased here, the keeper renewing the
    lease every 20 s for as long as the process lives: every later reply of the case's thread (from
    any replica, any surface) waits behind it (_waits_for_older), so the person's retry is never sent."""
    bot = bot_factory(env={"DATABASE_URL": pg_url})
    case = open_case_at_aws(bot)
    _failing_claim_writes(bot)

    bot.command(f"reply {case.display_id} the disk is full", trigger_id="T-first")
    told = bot.wait_for_response(timeout=20)["text"]  # on f3ab4ea: "... Nothing was done; please try again ..."
    bot.command(f"reply {case.display_id} the disk is full again", trigger_id="T-again")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "the disk is full again" not in sent_texts(bot, case.case_id):
        bot.services.cases.keeper.tick()  # as the journal keeper does every 20 s
        time.sleep(2)

    assert "the disk is full again" in sent_texts(bot, case.case_id), f"waits behind the reply told {told!r}"


def test_a_reply_is_sent_as_the_person_was_told_across_a_restart(bot_factory, pg_url: str) -> None:
    """The same dropped reply, once the replica restarts (a redeploy) and its lease runs out: another
    process resumes the record and sends what the person was told had not been done (and had resent)."""
    bot = bot_factory(env={"DATABASE_URL": pg_url})
    case = open_case_at_aws(bot)
    _failing_claim_writes(bot)
    bot.command(f"reply {case.display_id} the disk is full again", trigger_id="T-first")
    told = bot.wait_for_response(timeout=20)["text"]
    assert bot.services.work.wait_idle(timeout=20)

    bot.stop()
    _lease_runs_out(pg_url, "reply:trigger:T-first")
    after = bot_factory(env={"DATABASE_URL": pg_url})
    after.services.cases.keeper.tick()
    assert after.services.work.wait_idle(timeout=20)
    time.sleep(0.5)

    expected = [] if "Nothing was done" in told else ["the disk is full again"]
    assert sent_texts(after, case.case_id) == expected, f"told {told!r}"


def test_a_reply_replayed_to_another_replica_is_sent_once_not_never(bot_factory, pg_url: str) -> None:
    """The replica that noted the reply (before its ack) is not the one whose claim the database took
    first (its claims writer was a second behind: a batch before it, a pool connection to wait for).
    It drops its work (confirmed() is False); the other runs start_noted("") and answers "That reply
    was already handled." Nobody sends the reply, and the noting replica renews its lease forever."""
    first = bot_factory(env={"DATABASE_URL": pg_url})
    second = bot_factory(env={"DATABASE_URL": pg_url})
    case = open_case_at_aws(first)
    table = first.services.store.table("requests")
    real = table.claim_many

    def behind(items: dict[str, Any], *, durable: bool = True) -> set[str]:
        time.sleep(1.0)
        return real(items, durable=durable)

    table.claim_many = behind  # type: ignore[method-assign]
    body, headers, response_url = signed_command(first, f"reply {case.display_id} please look again")

    assert first.requests.post(body, FORM, signing="unsigned", headers=headers).status == 200
    assert second.requests.post(body, FORM, signing="unsigned", headers=headers).status == 200
    answers = first.wait_for_response(response_url=response_url, timeout=20)
    time.sleep(1.5)
    assert first.services.work.wait_idle(timeout=20) and second.services.work.wait_idle(timeout=20)
    _wait_until(lambda: sent_texts(first, case.case_id), timeout=5)

    assert sent_texts(first, case.case_id) == ["please look again"], (
        f"the reply was never sent; the person was told: {answers.get('text')!r}"
    )


def test_a_replica_forgets_the_claims_another_replica_pruned(pg_url: str) -> None:
    """Every replica prunes the shared table each minute; the first to run deletes the old rows, and
    forget() is called only with the keys a replica deleted itself. The others keep every key in
    memory for as long as they live (each request's 67-character signature, with every replica)."""
    from bot.store.claims import SharedClaims
    from bot.store.postgres import PostgresStore
    from bot.web import REPLAY_WINDOW_SECONDS, ReplayGuard

    here_store, there_store = PostgresStore.connect(pg_url), PostgresStore.connect(pg_url)
    here_table, there_table = here_store.table("requests"), there_store.table("requests")
    here_claims, there_claims = SharedClaims(here_table), SharedClaims(there_table)
    try:
        here = ReplayGuard(here_table, prune=lambda job: None, claims=here_claims)
        there = ReplayGuard(there_table, prune=lambda job: None, claims=there_claims)
        stamp = int(time.time())
        for n in range(50):
            assert there.claim(f"v0=request-{n}", stamp)  # served by `there`
        later = stamp + REPLAY_WINDOW_SECONDS + 1

        assert here.prune(later) == 50  # `here` prunes first this minute
        assert there.prune(later) == 0

        assert len(there_claims._claimed) == 0, f"{len(there_claims._claimed)} keys kept for good"
    finally:
        here_claims.close()
        there_claims.close()
        here_store.close()
        there_store.close()


def test_claim_batches_of_two_replicas_do_not_deadlock(pg_url: str) -> None:
    """Two replicas' writers each insert a batch holding the same keys in another order (a burst of
    replays sent to both): INSERT ... ON CONFLICT takes the row locks in the batch's order, so
    PostgreSQL aborts one batch with a deadlock, and every claim in it (the unrelated ones too) fails."""
    import threading

    from bot.store.postgres import PostgresStore

    stores = [PostgresStore.connect(pg_url), PostgresStore.connect(pg_url)]
    try:
        errors: list[BaseException] = []
        for attempt in range(5):
            keys = [f"v0=a{attempt}-{n}" for n in range(3000)]
            batches = [dict.fromkeys(keys, 1), dict.fromkeys(reversed(keys), 1)]
            barrier = threading.Barrier(2)

            def write(store: PostgresStore, batch: dict[str, int], barrier: threading.Barrier = barrier) -> None:
                barrier.wait(10)
                try:
                    store.table("requests").claim_many(batch, durable=False)
                except StoreError as error:
                    errors.append(error)

            threads = [threading.Thread(target=write, args=pair) for pair in zip(stores, batches, strict=True)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        assert errors == [], errors[0]
    finally:
        for store in stores:
            store.close()
