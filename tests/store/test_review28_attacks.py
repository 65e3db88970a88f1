"""Review 28's attacks on Journal.record's read-back, the pool's lock_timeout, delete_stamped_before and
items_with: the defects and risks it found (each of those tests failed before its fix) and the evidence
for what it found sound."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import psycopg
import pytest

from bot.store.backend import Store, StoreError
from bot.store.journal import Journal
from bot.store.postgres import PostgresStore

# -- (4) items_with is items() filtered by `isinstance(v, dict) and v.get(field) == text` ------------------

TRICKY_RECORDS: dict[str, Any] = {
    "string": {"display_id": "12345", "case_id": "case-s"},
    "number": {"display_id": 12345, "case_id": "case-n"},
    "boolean": {"display_id": True, "case_id": "case-b"},
    "float": {"display_id": 1.5, "case_id": "case-f"},
    "object": {"display_id": {"a": 1}, "case_id": "case-o"},
    "null": {"display_id": None, "case_id": "case-z"},
    "nested": {"case": {"display_id": "12345"}},
    "list": ["display_id", "12345"],
    "quotes": {"display_id": 'a"b\\c', "case_id": "case-q"},
    "unicode": {"display_id": "é🎉\u2028", "case_id": "case-u"},
}


def _python_filter(table, field: str, text: str) -> list[tuple[str, Any]]:
    return [(key, value) for key, value in table.items() if isinstance(value, dict) and value.get(field) == text]


@pytest.mark.parametrize("text", ["12345", "true", "1.5", '{"a": 1}', 'a"b\\c', "é🎉\u2028", "null", ""])
def test_items_with_picks_only_records_whose_field_is_that_string(store: Store, text: str) -> None:
    # Table.items_with's contract: "the records that are objects whose own `field` is the string `text`".
    # PostgreSQL's `value ->> field = text` also picks a number, a boolean or an object whose text is `text`.
    cases = store.table("cases")
    cases.put_many(TRICKY_RECORDS)

    assert list(cases.items_with("display_id", text)) == _python_filter(cases, "display_id", text)


def test_items_with_a_nul_in_the_text_finds_what_items_finds_and_raises_no_driver_error(store: Store) -> None:
    # Compared in Python, a NUL matched nothing on PostgreSQL (encode() stores U+FFFD); psycopg refuses
    # one in a parameter with psycopg.DataError, which is not a StoreError.
    cases = store.table("cases")
    cases.put("nul", {"display_id": "12\x0034"})
    found = list(cases.items_with("display_id", "12\x0034"))
    assert found == _python_filter(cases, "display_id", "12\x0034")


def test_the_sqlite_prefilter_misses_nothing_the_exact_check_accepts(tmp_path) -> None:
    """Random records of every shape (nested, escaped, non-ASCII, control characters, NUL, surrogate
    pairs, keys that need escaping): items_with is exactly items() filtered in Python."""
    from bot.store.tables import Store as SqliteStore

    rng = random.Random(28)
    alphabet = ['"', "\\", "/", ":", ",", "{", "}", "\x00", "\x1f", "\t", "é", "🎉", "\u2028", "a", "b", " "]

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4)))

    def value(depth: int = 0) -> Any:
        kind = rng.randint(0, 6 if depth < 2 else 3)
        if kind == 0:
            return text()
        if kind == 1:
            return rng.choice([0, 1, -1, 2.5, True, False, None])
        if kind in (2, 3):
            return rng.choice(texts)
        if kind == 4:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        return {rng.choice(fields): value(depth + 1) for _ in range(rng.randint(0, 4))}

    fields = [text() for _ in range(6)] + ["state", "display_id"]
    texts = [text() for _ in range(12)] + ["pending"]
    store = SqliteStore(str(tmp_path / "fuzz.sqlite"))
    try:
        table = store.table("journal")
        table.put_many({f"k{i}": value() for i in range(1500)})
        matched = 0
        for field in fields:
            for wanted in texts:
                expected = _python_filter(table, field, wanted)
                assert list(table.items_with(field, wanted)) == expected, (field, wanted)
                matched += len(expected)
        assert matched > 100  # the search found records, not only agreed on finding none
    finally:
        store.close()


def test_a_record_written_by_another_json_encoder_is_not_missed_by_the_sqlite_prefilter(tmp_path) -> None:
    # Every version of the bot wrote with _encode (compact, sorted, ASCII-escaped); a record put into the
    # file by hand with json.dumps' defaults (", " and ": ") was listed by items() but not by items_with():
    # a pending journal record written so would never be resumed.
    import json
    import sqlite3

    from bot.store.tables import Store as SqliteStore

    path = str(tmp_path / "hand.sqlite")
    SqliteStore(path).table("journal")
    with sqlite3.connect(path) as db:
        db.execute('INSERT INTO "journal" VALUES (?, ?)', ("by-hand", json.dumps({"state": "pending"})))
    store = SqliteStore(path)
    try:
        journal = store.table("journal")
        found = list(journal.items_with("state", "pending"))
        assert found == _python_filter(journal, "state", "pending")
    finally:
        store.close()


# -- (3) delete_stamped_before ---------------------------------------------------------------------------


def test_a_horizon_at_or_below_0_deletes_values_that_are_not_stamps_on_both_backends(store: Store) -> None:
    # The contract: every record "whose value is not a number at or after `horizon`" goes. SQLite reads a
    # string or an object as 0, so at a horizon <= 0 it kept them where PostgreSQL deleted them
    # (unreachable from ReplayGuard, whose horizon is now - 600 s).
    requests = store.table("requests")
    requests.put_many({"text": "x", "object": {"a": 1}, "stamp": 5})
    deleted = sorted(requests.delete_stamped_before(0))
    assert deleted == ["object", "text"]


def test_a_number_beyond_double_precision_does_not_stop_every_later_prune(store: Store) -> None:
    # PostgreSQL: `(value #>> '{}')::float8` raises NumericValueOutOfRange (a psycopg.DataError, not a
    # StoreError) for 1e309 and beyond: one such row and the minute's prune fails, every minute, forever.
    # Not reachable from a verified Slack timestamp (within 5 minutes of now); reachable by hand or copy.
    requests = store.table("requests")
    requests.put_many({"huge": 10**400, "old": 1000, "new": 2000})
    deleted = requests.delete_stamped_before(1500)
    assert sorted(deleted) == ["old"]


def test_floats_are_stamps_now_and_the_memory_of_shared_claims_agrees_with_the_table(pg_url: str) -> None:
    """The old prune deleted every float; the new one keeps a float at or after the horizon, as
    SharedClaims.forget_older always did: after a prune, memory and table hold the same keys."""
    from bot.store.claims import SharedClaims
    from bot.web import REPLAY_WINDOW_SECONDS, ReplayGuard

    store = PostgresStore.connect(pg_url)
    claims = SharedClaims(store.table("requests"), confirm_timeout=10)
    try:
        now = 2_000_000_000.0
        horizon = now - REPLAY_WINDOW_SECONDS
        stamps = {"int-old": int(horizon) - 1, "int-new": int(horizon) + 1, "float-old": horizon - 0.5}
        stamps |= {"float-new": horizon + 0.5, "float-edge": horizon, "text": "x", "obj": {"a": 1}}
        for key, stamp in stamps.items():
            assert claims.claim(key, stamp)
        guard = ReplayGuard(store.table("requests"), prune=lambda job: job(), claims=claims)

        assert guard.prune(now) == 4
        assert sorted(store.table("requests").keys()) == ["float-edge", "float-new", "int-new"]
        assert sorted(claims._claimed) == ["float-edge", "float-new", "int-new"]
    finally:
        claims.close()
        store.close()


# -- (2) lock_timeout ------------------------------------------------------------------------------------


def test_an_explicit_lock_timeout_of_0_in_the_url_is_kept(pg_url: str) -> None:
    # postgres.py: "A lock_timeout the database URL or the server's settings give is kept." An operator who
    # sets 0 (wait for as long as the lock lasts) gets 5 s: `current_setting('lock_timeout') = '0'` cannot
    # tell "set to 0" from "not set". pg_settings.source can ('default' only when nobody set it).
    store = PostgresStore.connect(pg_url + "?options=-c%20lock_timeout%3D0")
    try:
        with store.connection() as conn:
            assert conn.execute("SHOW lock_timeout").fetchone() == ("0",)
    finally:
        store.close()


@pytest.mark.parametrize("where", ["DATABASE", "ROLE"])
def test_a_lock_timeout_the_server_sets_is_kept(postgres_cluster, pg_url: str, where: str) -> None:
    name = pg_url.rsplit("/", 1)[1]
    target = f'DATABASE "{name}"' if where == "DATABASE" else "ROLE postgres"
    postgres_cluster.admin_sql(f"ALTER {target} SET lock_timeout = '9s'")
    try:
        store = PostgresStore.connect(pg_url, pool_size=3)
        try:
            held = [store.connection() for _ in range(3)]
            settings = [cm.__enter__().execute("SHOW lock_timeout").fetchone()[0] for cm in held]
            for cm in held:
                cm.__exit__(None, None, None)
            assert settings == ["9s"] * 3
        finally:
            store.close()
    finally:
        postgres_cluster.admin_sql(f"ALTER {target} RESET lock_timeout")


def test_every_pooled_connection_keeps_the_timeout_after_a_failed_transaction_and_after_a_server_restart(
    postgres_cluster, pg_url: str
) -> None:
    store = PostgresStore.connect(pg_url, pool_size=1)
    try:
        with pytest.raises(psycopg.errors.DivisionByZero), store.connection() as conn, conn.transaction():
            conn.execute("SET LOCAL lock_timeout = '1s'")
            conn.execute("SELECT 1/0")
        with store.connection() as conn:
            assert conn.execute("SHOW lock_timeout").fetchone() == ("5s",)
        postgres_cluster.stop()
        postgres_cluster.start()
        time.sleep(1.5)
        with store.connection() as conn:
            assert conn.execute("SHOW lock_timeout").fetchone() == ("5s",)
    finally:
        store.close()


def test_updates_of_one_key_by_two_replicas_under_contention_never_time_out(pg_url: str) -> None:
    """Sixteen writers (two replicas' pools of 8) queue on one row, each holding it 20 ms: the longest
    wait is about 0.3 s, far from the 5 s lock timeout."""
    stores = [PostgresStore.connect(pg_url), PostgresStore.connect(pg_url)]
    errors: list[BaseException] = []

    def bump(old: Any) -> int:
        time.sleep(0.02)
        return (old or 0) + 1

    def writer(store: PostgresStore) -> None:
        try:
            for _ in range(10):
                store.table("sync").update("hot", bump)
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(stores[i % 2],)) for i in range(16)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert stores[0].table("sync").get("hot") == 160
    finally:
        for store in stores:
            store.close()


# -- (1) Journal.record's read-back ------------------------------------------------------------------------


class _AnswerLost:
    """claim() writes (or not), then its answer is lost."""

    def __init__(self, table, *, write: bool = True) -> None:
        self.table, self.write = table, write

    def __getattr__(self, name):
        return getattr(self.table, name)

    def claim(self, key, value=True, **options):
        if self.write:
            self.table.claim(key, value, **options)
        raise StoreError("connection lost")


def test_two_replicas_noting_one_key_while_one_loses_its_answer_never_both_hold_it(pg_url: str) -> None:
    store = PostgresStore.connect(pg_url)
    try:
        for round_ in range(40):
            key = f"reply:C1:{round_}.0"
            lossy, plain = Journal(store.table("journal")), Journal(store.table("journal"))
            lossy.table = _AnswerLost(store.table("journal"), write=bool(round_ % 2))
            start = threading.Barrier(2)
            outcomes: dict[str, Any] = {}

            def note(name: str, journal: Journal, key: str = key, outcomes: dict = outcomes, start=start) -> None:
                start.wait()
                try:
                    outcomes[name] = journal.record(key, "reply", "C1|0.5", {})
                except StoreError as error:
                    outcomes[name] = error

            threads = [threading.Thread(target=note, args=(n, j)) for n, j in (("lossy", lossy), ("plain", plain))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            holders = [j.held(key).holder for j in (lossy, plain) if j.held(key) is not None]
            assert len(holders) == 1, outcomes
            assert store.table("journal").get(key)["holder"] == holders[0]
    finally:
        store.close()


def test_a_note_the_database_refused_is_not_read_back_before_the_ack_gives_up(pg_url: str) -> None:
    # A lock timeout (or no connection within the pool's timeout) means the claim was never written, yet
    # record() reads the key back, waiting as long again: a form's record (order == key, noted before its
    # ack) holds the request's thread 2 x lock_timeout (10 s at the defaults; 5 s before this change).
    store = PostgresStore.connect(pg_url, timeout=1.0, lock_timeout=1.0)
    try:
        journal = Journal(store.table("journal"))
        with psycopg.connect(pg_url) as holder:
            holder.execute("LOCK TABLE kv IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            with pytest.raises(StoreError, match="lock timeout"):
                journal.record("create:V1", "open_case", "create:V1", {})
            took = time.monotonic() - started
            holder.rollback()
        assert took < 1.8, f"refused after {took:.1f} s: read back after the refusal"
    finally:
        store.close()
