"""PostgreSQL alone: atomic across processes, jsonb, migrations, bad URLs, and a database that goes away."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from bot.config import ConfigError, load_settings
from bot.store.backend import StoreError, open_store
from bot.store.postgres import MIGRATIONS, PostgresStore
from bot.store.tables import Store as SqliteStore
from tests.store import procs
from tests.support.postgres import PostgresCluster

PROCESSES = 4


@pytest.fixture
def pg(pg_url: str) -> Iterator[PostgresStore]:
    store = PostgresStore.connect(pg_url)
    try:
        yield store
    finally:
        store.close()


def raw(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query).fetchall()


def in_processes(target: Callable, args_for: Callable[[int, object], tuple]) -> list:
    """Run `target` in PROCESSES fresh interpreters released together; their results."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Barrier(PROCESSES)
        with context.Pool(PROCESSES) as pool:
            pending = [pool.apply_async(target, args_for(n, start)) for n in range(PROCESSES)]
            return [result.get(timeout=120) for result in pending]


# Atomic across processes -----------------------------------------------------------------------


@pytest.mark.parametrize("durable", [True, False])
def test_claim_under_concurrency_from_processes_has_exactly_one_winner_per_key(
    pg: PostgresStore, pg_url: str, durable: bool
) -> None:
    keys = [f"Ev{n}" for n in range(100)]

    won = in_processes(procs.claim_keys, lambda n, start: (pg_url, keys, start, durable))

    all_wins = [key for wins in won for key in wins]
    assert len(won) == PROCESSES, "every process claimed every key"
    # How the wins split between processes depends on scheduling (a loaded machine may run one
    # process's 100 claims before the others wake), so only the outcome is asserted.
    assert sorted(all_wins) == sorted(keys), "every key won exactly once"
    assert len(pg.table("events")) == 100


def test_an_unflushed_claim_commits_without_waiting_for_the_disk_and_leaves_its_connection_durable(
    pg_url: str,
) -> None:
    """The replay guard's claim: synchronous_commit off for its own one-statement transaction only;
    every later write on the pooled connection it used still waits for the disk."""
    from bot.store.postgres import _CLAIM_UNFLUSHED

    # The test cluster runs with synchronous_commit off altogether; this database has it on, as in production.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{pg_url.rsplit("/", 1)[-1]}" SET synchronous_commit = on')
    store = PostgresStore.connect(pg_url, pool_size=1)
    try:
        requests = store.table("requests")
        assert requests.claim("v0=sig", 1, durable=False) is True
        assert requests.claim("v0=sig", 2, durable=False) is False
        assert requests.get("v0=sig") == 1
        with store.connection() as conn:
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
            # What the claim's own transaction commits with (the same CTE, read instead of inserting):
            seen = (
                _CLAIM_UNFLUSHED.split(" INSERT", 1)[0] + " SELECT current_setting('synchronous_commit') FROM unflushed"
            )
            assert conn.execute(seen).fetchone() == ("off",)
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
    finally:
        store.close()


def test_update_under_concurrency_from_processes_loses_no_increment(pg: PostgresStore, pg_url: str) -> None:
    in_processes(procs.increment, lambda n, start: (pg_url, 50, start))

    assert pg.table("sync").get("counter") == {"n": PROCESSES * 50}


def test_put_many_is_one_transaction_when_the_database_refuses_a_row(pg: PostgresStore) -> None:
    links = pg.table("links")
    links.put("a", "old")

    # PostgreSQL text cannot hold NUL: the server refuses the third row after the first two were sent.
    with pytest.raises(psycopg.DataError):
        links.put_many({"a": "new", "b": 2, "bad\x00key": 3, "d": 4})

    assert dict(links.items()) == {"a": "old"}


# Storage ---------------------------------------------------------------------------------------


def test_values_are_jsonb_never_pickle(pg: PostgresStore, pg_url: str) -> None:
    record = {"case_id": "case-1", "subject": "Disk <full> & été", "tags": ["a", None]}
    pg.table("cases").put("case-1", record)

    rows = raw(pg_url, "SELECT pg_typeof(value)::text, value::text, table_name FROM kv WHERE key = 'case-1'")

    assert rows == [("jsonb", '{"tags": ["a", null], "case_id": "case-1", "subject": "Disk <full> & été"}', "cases")]


def test_a_nul_character_becomes_a_replacement_character_instead_of_failing_forever(pg: PostgresStore) -> None:
    pg.table("sync").put("case-1", {"body\x00": "before\x00after", "list": ["\x00"], "kept": "\\u0000"})

    assert pg.table("sync").get("case-1") == {"body\ufffd": "before\ufffdafter", "list": ["\ufffd"], "kept": "\\u0000"}


# Schema ----------------------------------------------------------------------------------------


def test_schema_is_created_once_and_opening_again_changes_nothing(pg_url: str) -> None:
    PostgresStore.connect(pg_url).close()
    PostgresStore.connect(pg_url).close()

    versions = raw(pg_url, "SELECT version FROM schema_version ORDER BY version")
    assert versions == [(n,) for n in range(1, len(MIGRATIONS) + 1)]


def test_replicas_starting_at_once_migrate_once(pg_url: str) -> None:
    found = in_processes(procs.migrate_at_once, lambda n, start: (pg_url, start))

    assert sorted(found) == [0] + [len(MIGRATIONS)] * (PROCESSES - 1), "one migrated, the others found it done"
    assert raw(pg_url, "SELECT count(*) FROM schema_version") == [(len(MIGRATIONS),)]


def test_a_database_migrated_by_a_newer_bot_still_opens(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    PostgresStore.connect(pg_url).close()
    next_version = len(MIGRATIONS) + 1
    raw(pg_url, f"INSERT INTO schema_version (version) VALUES ({next_version}) RETURNING version")

    store = PostgresStore.connect(pg_url)
    try:
        store.table("meta").put("k", 1)
        assert store.table("meta").get("k") == 1
    finally:
        store.close()
    assert f"version {next_version}, newer" in caplog.text


# Start-up --------------------------------------------------------------------------------------


def test_open_store_picks_postgresql_by_database_url(pg_url: str, tmp_path: Path) -> None:
    db_path = tmp_path / "bot.sqlite"
    with_url = load_settings({"DATABASE_URL": pg_url, "BOT_DB_PATH": str(db_path)}, require_slack=False)
    without = load_settings({"BOT_DB_PATH": str(db_path)}, require_slack=False)

    chosen = open_store(with_url)
    try:
        assert isinstance(chosen, PostgresStore)
        assert not db_path.exists(), "no sqlite file when the state is in PostgreSQL"
    finally:
        chosen.close()
    default = open_store(without)
    try:
        assert isinstance(default, SqliteStore)
        assert default.path == str(db_path)
    finally:
        default.close()


def test_heroku_style_postgres_scheme_is_accepted(postgres_cluster: PostgresCluster, pg_url: str) -> None:
    heroku_url = "postgres://" + pg_url.split("://", 1)[1]
    settings = load_settings({"DATABASE_URL": heroku_url}, require_slack=False)

    store = open_store(settings)
    try:
        assert store.healthy()
    finally:
        store.close()


@pytest.mark.parametrize(
    ("make_url", "expected"),
    [
        (lambda c: f"postgresql://postgres:s3cret-pw@127.0.0.1:{c.port}/no_such_db", "no_such_db"),
        (lambda c: "postgresql://bot:s3cret-pw@127.0.0.1:1/bot", "cannot reach PostgreSQL at bot@127.0.0.1:1/bot"),
        (lambda c: "postgresql://bot:s3cret-pw@127.0.0.1:notaport/bot", "DATABASE_URL"),
    ],
    ids=["missing database", "nothing listening", "malformed"],
)
def test_a_wrong_database_url_is_one_clear_line_without_the_password(
    postgres_cluster: PostgresCluster, make_url: Callable[[PostgresCluster], str], expected: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        PostgresStore.connect(make_url(postgres_cluster))

    message = str(raised.value)
    assert expected in message
    assert "\n" not in message
    assert "s3cret-pw" not in message


# A database that goes away ---------------------------------------------------------------------


def wait_until(condition: Callable[[], bool], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_health_turns_false_while_the_server_is_down_and_the_store_recovers(
    postgres_cluster: PostgresCluster, pg_url: str
) -> None:
    # Operations give up after 1 s instead of 5 s: the same path, a faster test.
    pg = PostgresStore.connect(pg_url, timeout=1.0)
    cases = pg.table("cases")
    cases.put("case-1", {"status": "opened"})
    assert pg.healthy()

    postgres_cluster.stop()
    try:
        assert pg.healthy() is False
        with pytest.raises(StoreError, match="unavailable"):
            cases.put("case-2", {"status": "opened"})
        with pytest.raises(StoreError):
            cases.get("case-1")
    finally:
        postgres_cluster.start()

    try:
        assert wait_until(pg.healthy), "the store reconnects once the server is back"
        assert cases.get("case-1") == {"status": "opened"}
        assert cases.claim("case-2", {"status": "opened"}) is True
    finally:
        pg.close()


def test_a_writer_blocked_on_a_lock_is_released_when_the_holder_commits(pg: PostgresStore) -> None:
    """update() really locks the row: a second writer waits for the first one's change to finish."""
    sync = pg.table("sync")
    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def slow(old: object) -> str:
        inside.set()
        release.wait(30)
        order.append("slow")
        return "slow"

    def fast(old: object) -> str:
        order.append(f"fast saw {old}")
        return "fast"

    holder = threading.Thread(target=sync.update, args=("k", slow))
    holder.start()
    assert inside.wait(30)
    waiter = threading.Thread(target=sync.update, args=("k", fast))
    waiter.start()
    waiter.join(1)
    assert waiter.is_alive(), "the second writer waits on the row lock"
    release.set()
    holder.join(30)
    waiter.join(30)

    assert order == ["slow", "fast saw slow"]
    assert sync.get("k") == "fast"


def test_after_a_server_restart_the_first_operation_succeeds(
    postgres_cluster: PostgresCluster, pg: PostgresStore
) -> None:
    """Pooled connections the restart broke are found and replaced before use, not handed to a caller."""
    cases = pg.table("cases")
    cases.put("case-1", {"status": "opened"})

    postgres_cluster.stop()
    postgres_cluster.start()
    time.sleep(1.5)  # longer than CHECK_AFTER_IDLE_SECONDS: the connection is idle, as after any outage

    assert cases.get("case-1") == {"status": "opened"}
    assert cases.claim("case-2", {"status": "opened"}) is True


def test_after_a_server_restart_a_full_pool_of_broken_connections_does_not_fail_the_first_operation(
    postgres_cluster: PostgresCluster, pg: PostgresStore
) -> None:
    """A busy bot's pool holds 8 connections. Found broken one at a time, each after a longer pause
    (psycopg_pool's backoff: 0, 1, 2, 4 s), they made the first operation after a restart fail at the
    pool's 5 s timeout, and every operation that came meanwhile with it (review28)."""
    held = [pg.connection() for _ in range(8)]
    for connection in held:
        connection.__enter__()
    for connection in held:
        connection.__exit__(None, None, None)

    postgres_cluster.stop()
    postgres_cluster.start()
    time.sleep(1.5)  # longer than CHECK_AFTER_IDLE_SECONDS
    started = time.monotonic()

    pg.table("cases").put("case-1", {"status": "opened"})
    assert time.monotonic() - started < 2.5


def test_an_operation_on_a_locked_table_fails_in_seconds_and_the_store_works_once_the_lock_goes(
    pg_url: str,
) -> None:
    """Someone's transaction holds `kv` (a manual ALTER, a stuck session): every operation and the
    request-claims writer would wait for as long as it lasts. Each gives up instead, as on a lost
    database, and the store works again once the lock goes (review16 4c)."""
    from bot.store.claims import SharedClaims

    store = PostgresStore.connect(pg_url, lock_timeout=0.5)
    claims = SharedClaims(store.table("requests"), confirm_timeout=30)
    try:
        with psycopg.connect(pg_url) as holder:
            holder.execute("LOCK TABLE kv IN ACCESS EXCLUSIVE MODE")
            outcome: list[object] = []

            def write() -> None:
                try:
                    store.table("cases").put("case-1", {"status": "opened"})
                    outcome.append("written")
                except StoreError as error:
                    outcome.append(error)

            writer = threading.Thread(target=write, daemon=True)
            writer.start()
            writer.join(15)
            pending = claims.admit("sig-1")
            assert pending is not None
            with pytest.raises(StoreError, match="lock timeout"):
                pending.won()
            holder.rollback()

        assert not writer.is_alive(), "the write still waits on the lock"
        assert isinstance(outcome[0], StoreError) and "lock timeout" in str(outcome[0])
        store.table("cases").put("case-1", {"status": "opened"})
        assert store.table("cases").get("case-1") == {"status": "opened"}
        assert claims.claim("sig-1") is True, "a claim the lock refused can be made again"
    finally:
        claims.close()
        store.close()


def test_a_lock_timeout_the_url_sets_is_kept(pg_url: str) -> None:
    store = PostgresStore.connect(pg_url + "?options=-c%20lock_timeout%3D7s", lock_timeout=0.5)
    try:
        with store.connection() as conn:
            assert conn.execute("SHOW lock_timeout").fetchone() == ("7s",)
    finally:
        store.close()


def test_a_transaction_the_server_ended_for_idling_is_a_store_error(pg_url: str) -> None:
    """idle_in_transaction_session_timeout (an operator's hardening setting) ends update()'s transaction
    while its change() runs: SQLSTATE 25P03, which psycopg raises as an InternalError, escaped every
    caller's `except StoreError` (review29). Nothing was written."""
    store = PostgresStore.connect(pg_url + "?options=-c%20idle_in_transaction_session_timeout%3D300")
    try:
        table = store.table("cases")
        table.put("case-1", {"n": 0})

        def slow(old):
            time.sleep(1.0)  # a GC pause, a thread starved of the interpreter lock
            return {"n": 1}

        with pytest.raises(StoreError) as raised:
            table.update("case-1", slow)
        assert raised.value.may_have_written is False
        assert table.get("case-1") == {"n": 0}
    finally:
        store.close()
