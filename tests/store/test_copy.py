"""`python -m bot store copy`: every table moves between sqlite and PostgreSQL, and nothing is overwritten
unless asked."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from bot.store.backend import Store
from bot.store.copy import run_copy
from bot.store.postgres import PostgresStore
from bot.store.tables import TABLES
from bot.store.tables import Store as SqliteStore


def fill(store: Store) -> dict[str, list[tuple[str, object]]]:
    """A record or two in every table (a little different in each); what each table then lists."""
    for n, name in enumerate(TABLES):
        table = store.table(name)
        table.put(f"{name}-b", {"n": n, "text": "été 🔥", "list": [1, None]})
        table.put(f"{name}-a", n)
    store.table("links").put_many({f"case-{i}|C1": {"ts": f"{i}.0"} for i in range(50)})
    return {name: list(store.table(name).items()) for name in TABLES}


def contents(store: Store) -> dict[str, list[tuple[str, object]]]:
    return {name: list(store.table(name).items()) for name in TABLES}


ROOT = Path(__file__).resolve().parents[2]


def console(source: str, target: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """The real console: `python -m bot store copy …`."""
    command = [sys.executable, "-m", "bot", "store", "copy", "--from", source, "--to", target, *extra]
    return subprocess.run(command, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120)


def copy(source: str, target: str, *extra: str, err: io.StringIO | None = None) -> int:
    """The same command in this process (faster), its refusals into `err`."""
    return run_copy(source, target, force="--force" in extra, out=io.StringIO(), err=err or io.StringIO())


def sqlite_with(path: Path, **records: object) -> str:
    store = SqliteStore(str(path))
    for key, value in records.items():
        store.table("meta").put(key, value)
    store.close()
    return str(path)


def test_sqlite_to_postgresql_and_back_keeps_every_record_in_order(tmp_path: Path, pg_url: str) -> None:
    sqlite_path = str(tmp_path / "old" / "bot.sqlite")
    old = SqliteStore(sqlite_path)
    expected = fill(old)
    old.close()

    there = console(sqlite_path, pg_url)
    assert there.returncode == 0, there.stderr
    printed = there.stdout
    back_path = str(tmp_path / "back.sqlite")
    assert copy(pg_url, back_path) == 0

    moved = PostgresStore.connect(pg_url)
    back = SqliteStore(back_path)
    try:
        assert contents(moved) == expected
        assert contents(back) == expected
    finally:
        moved.close()
        back.close()
    for name in TABLES:
        assert any(line.split() == [name, str(len(expected[name]))] for line in printed.splitlines()), name
    total = sum(len(records) for records in expected.values())
    assert f"copied {total} records" in printed
    assert "@127.0.0.1" in printed and "postgresql://" not in printed


def test_a_non_empty_target_is_refused_unless_forced(tmp_path: Path, pg_url: str) -> None:
    sqlite_path = str(tmp_path / "bot.sqlite")
    source = SqliteStore(sqlite_path)
    source.table("cases").put("case-1", {"from": "sqlite"})
    source.close()
    target = PostgresStore.connect(pg_url)
    try:
        target.table("cases").put("case-1", {"from": "postgres"})
        target.table("cases").put("case-only-in-target", 1)

        err = io.StringIO()
        assert copy(sqlite_path, pg_url, err=err) == 1
        refused = err.getvalue()
        assert "already holds records (cases: 2)" in refused and "--force" in refused
        assert target.table("cases").get("case-1") == {"from": "postgres"}

        assert copy(sqlite_path, pg_url, "--force") == 0
        assert dict(target.table("cases").items()) == {"case-1": {"from": "sqlite"}}
    finally:
        target.close()


def test_a_missing_source_file_is_refused_and_creates_nothing(tmp_path: Path, pg_url: str) -> None:
    missing = tmp_path / "typo.sqlite"
    err = io.StringIO()

    assert copy(str(missing), pg_url, err=err) == 1

    assert "does not exist" in err.getvalue()
    assert not missing.exists()


def test_copying_a_store_onto_itself_is_refused(tmp_path: Path) -> None:
    path = sqlite_with(tmp_path / "bot.sqlite", k=1)
    err = io.StringIO()

    assert copy(path, str(tmp_path / "." / "bot.sqlite"), "--force", err=err) == 1
    assert "same store" in err.getvalue()


def test_an_unreachable_target_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = sqlite_with(tmp_path / "bot.sqlite", k=1)

    done = console(path, "postgresql://bot:s3cret-pw@127.0.0.1:1/bot")

    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "cannot reach PostgreSQL" in done.stderr
    assert "s3cret-pw" not in done.stderr and "Traceback" not in done.stderr
