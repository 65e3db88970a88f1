"""The bot on PostgreSQL, end to end: a case linked through Slack lands in the database, /healthz follows
the database, and a bad DATABASE_URL stops `python -m bot` at start with one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.cases.helpers import link_case, open_case_at_aws
from tests.support.postgres import PostgresCluster

ROOT = Path(__file__).resolve().parents[2]


def test_a_bot_on_postgresql_keeps_its_state_there(bot_factory: Callable, pg_url: str, tmp_path: Path) -> None:
    bot = bot_factory(env={"DATABASE_URL": pg_url})
    case = open_case_at_aws(bot)

    card = link_case(bot, case)

    with psycopg.connect(pg_url) as conn:
        tables = {row[0] for row in conn.execute("SELECT DISTINCT table_name FROM kv").fetchall()}
    assert {"cases", "links", "threads"} <= tables
    assert bot.services.cases.case_for_thread("C1", card["ts"]) == case.case_id
    assert not list(tmp_path.glob("*.sqlite")), "no sqlite file beside a PostgreSQL store"


def test_healthz_is_red_while_the_database_is_down_and_green_when_it_is_back(
    bot_factory: Callable, pg_url: str, postgres_cluster: PostgresCluster
) -> None:
    bot = bot_factory(env={"DATABASE_URL": pg_url})
    assert bot.health().status == 200

    postgres_cluster.stop()
    try:
        down = bot.health()
        assert down.status == 503
        assert down.body["store"] is False
    finally:
        postgres_cluster.start()

    deadline = time.monotonic() + 60
    while bot.health().status != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    back = bot.health()
    assert back.status == 200 and back.body["store"] is True


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://bot:s3cret-pw@127.0.0.1:1/bot", "cannot reach PostgreSQL at bot@127.0.0.1:1/bot"),
        ("mysql://bot:s3cret-pw@db/bot", "DATABASE_URL must be a PostgreSQL URL"),
    ],
    ids=["unreachable", "not postgresql"],
)
def test_a_bad_database_url_stops_the_bot_at_start_with_one_line(tmp_path: Path, url: str, expected: str) -> None:
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_SIGNING_SECRET": "test-secret",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",
        "BOT_DB_PATH": str(tmp_path / "bot.sqlite"),
        "DATABASE_URL": url,
    }

    done = subprocess.run(
        [sys.executable, "-m", "bot", "serve"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert expected in lines[0]
    assert "Traceback" not in done.stderr and "s3cret-pw" not in done.stderr + done.stdout
    assert not (tmp_path / "bot.sqlite").exists()
