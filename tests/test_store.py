"""The store: JSON on disk (never pickle), first delivery wins, and what was written survives kill -9."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from bot.store.tables import TABLES, Store


@pytest.fixture
def store(tmp_path: Path):
    opened = Store(str(tmp_path / "state" / "bot.sqlite"))
    yield opened
    opened.close()


def _raw_value(path: str, table: str, key: str):
    with sqlite3.connect(path) as db:
        row = db.execute(f'SELECT value FROM "{table}" WHERE key = ?', (key,)).fetchone()
    return row[0] if row else None


def test_values_are_stored_as_json_text_not_pickle(store: Store) -> None:
    record = {"case_id": "case-1", "subject": "Disk <full> & \u00e9t\u00e9", "count": 3, "tags": ["a", None]}
    store.table("cases").put("case-1", record)

    raw = _raw_value(store.path, "cases", "case-1")

    assert isinstance(raw, str), f"expected JSON text, got {type(raw).__name__}: {raw!r}"
    assert not raw.startswith("\x80"), "pickle protocol header"
    assert json.loads(raw) == record


def test_a_value_that_is_not_json_is_refused_rather_than_pickled(store: Store) -> None:
    with pytest.raises(TypeError):
        store.table("meta").put("bad", {"when": object()})
    assert store.table("meta").get("bad") is None


def test_claim_is_won_by_the_first_caller_only(store: Store) -> None:
    events = store.table("events")

    assert events.claim("Ev1", {"by": "first"}) is True
    assert events.claim("Ev1", {"by": "second"}) is False
    assert events.get("Ev1") == {"by": "first"}


def test_claim_under_concurrency_has_exactly_one_winner(store: Store) -> None:
    events = store.table("events")
    start = threading.Barrier(16)
    wins: list[bool] = []

    def contender(n: int) -> None:
        start.wait()
        wins.append(events.claim("Ev-race", n))

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert wins.count(True) == 1
    assert len(wins) == 16


def test_update_and_delete(store: Store) -> None:
    sync = store.table("sync")

    assert sync.update("case-1", lambda v: (v or 0) + 1) == 1
    assert sync.update("case-1", lambda v: v + 1) == 2
    sync.delete("case-1")
    sync.delete("never-there")

    assert "case-1" not in sync
    assert sync.get("case-1", "gone") == "gone"


def test_tables_are_separate_and_unknown_tables_are_refused(store: Store) -> None:
    store.table("cases").put("k", 1)
    store.table("links").put("k", 2)

    assert store.table("cases").get("k") == 1
    assert store.table("links").get("k") == 2
    with pytest.raises(KeyError):
        store.table("not-a-table")


def test_everything_survives_a_clean_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "bot.sqlite")
    first = Store(path)
    first.table("cases").put("case-1", {"status": "opened"})
    first.table("links").put_many({"case-1|C1": {"ts": "1.1"}, "case-1|C2": {"ts": "2.2"}})
    first.table("events").claim("Ev1")
    first.close()

    second = Store(path)
    try:
        assert second.table("cases").get("case-1") == {"status": "opened"}
        assert dict(second.table("links").items()) == {"case-1|C1": {"ts": "1.1"}, "case-1|C2": {"ts": "2.2"}}
        assert second.table("events").claim("Ev1") is False
        assert second.healthy()
    finally:
        second.close()


_KILL_AFTER_WRITE = """
import os, signal, sys
from bot.store.tables import Store

store = Store(sys.argv[1])
store.table("outbound").put("sent-1", {"case_id": "case-1", "body": "hello"})
store.table("links").put_many({"a": 1, "b": 2})
store.table("events").claim("Ev1")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_write_survives_kill_9_right_after_it(tmp_path: Path) -> None:
    path = str(tmp_path / "bot.sqlite")

    done = subprocess.run(
        [sys.executable, "-c", _KILL_AFTER_WRITE, path],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        timeout=60,
    )

    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    reopened = Store(path)
    try:
        assert reopened.table("outbound").get("sent-1") == {"case_id": "case-1", "body": "hello"}
        assert reopened.table("links").get("a") == 1
        assert reopened.table("links").get("b") == 2
        assert reopened.table("events").claim("Ev1") is False
    finally:
        reopened.close()


def test_every_table_says_what_it_holds() -> None:
    assert all(description.strip() for description in TABLES.values())


def test_a_second_process_reaching_the_file_through_a_symlink_is_refused_too(tmp_path):
    # A deploy may name the database by a link (/data/bot.sqlite -> /vol/bot.sqlite): the lock must be
    # the file's, not the name's, or two pollers post every AWS reply twice.
    real = tmp_path / "vol" / "bot.sqlite"
    real.parent.mkdir()
    first = Store.open(str(real))
    (tmp_path / "bot.sqlite").symlink_to(real)
    code = textwrap.dedent(
        f"""
        import sys
        from bot.config import ConfigError
        from bot.store.tables import Store
        try:
            Store.open({str(tmp_path / "bot.sqlite")!r})
        except ConfigError as error:
            sys.exit(error.key)
        """
    )
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    finally:
        first.close()
    assert done.stderr.strip() == "store_in_use", done.stderr


def test_a_relative_path_is_locked_once_by_its_process(tmp_path, monkeypatch):
    # ./bot.sqlite and its absolute form name one lock file: the process must not lock itself out.
    monkeypatch.chdir(tmp_path)
    store = Store.open("./bot.sqlite")
    store.close()
