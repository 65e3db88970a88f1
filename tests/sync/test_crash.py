"""kill -9 at any point of a cycle, then a restart: every communication is in the thread exactly once, in order.

The bot runs as `python -m bot serve` in a subprocess, against the sandbox and the fake Slack of this
test process. Slack answers slowly (latency), so a kill often lands while a post is on its way: Slack
stores that message although the bot never hears back, which only reading the thread back can tell.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.fake_slack import BOT_TOKEN
from tests.support.http import request
from tests.sync.helpers import communication_messages, open_case, payload, shown_text, status_messages


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_bot(db_path: str, fake_slack, sandbox) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "HOME": os.environ.get("HOME", "/tmp"),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": "test-secret",
        "SLACK_API_URL": fake_slack.api_url,
        "BOT_DB_PATH": db_path,
        "POLL_INTERVAL_SECONDS": "1",
        "PORT": str(port),
        "AWS_ENDPOINT_URL_SUPPORT": sandbox.url,
        "AWS_ACCESS_KEY_ID": "sandbox",
        "AWS_SECRET_ACCESS_KEY": "sandbox",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    return process, f"http://127.0.0.1:{port}"


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def wait_until(condition, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def intent_recorded(db_path: str) -> bool:
    """The poller wrote a pending delivery (read straight from the file, as another process can)."""
    with sqlite3.connect(db_path, timeout=5) as db:
        try:
            rows = db.execute('SELECT value FROM "sync"').fetchall()
        except sqlite3.OperationalError:
            return False
    return any(json.loads(value).get("pending") for (value,) in rows)


def cycles(url: str) -> int:
    try:
        response = request("GET", url + "/healthz")
    except OSError:
        return -1
    if response.status != 200:
        return -1
    return response.json["workers"]["poller"]["cycles"]


@pytest.mark.slow(seconds=15)
def test_sigkill_during_cycles_loses_and_doubles_nothing(bot_factory, fake_slack, sandbox):
    setup = bot_factory()
    case = open_case(setup)
    thread = setup.services.cases.post_card(case, "C1", linked_by="U1").thread_ts
    setup.services.sync.run_cycle()
    db_path = setup.db_path
    setup.stop()

    bodies = [f"answer {i}" for i in range(1, 9)]  # more than five: DescribeCommunications pages them
    for body in bodies:
        sandbox.add_aws_reply(case.case_id, body)
    fake_slack.set_latency(0.3, "chat.postMessage")

    def posted() -> int:
        return len(
            fake_slack.calls("chat.postMessage", lambda c: c.status == 200 and c.params.get("thread_ts") == thread)
        )

    # 1. Killed right after the intent was written: the first post is still on its way to Slack.
    process, _ = start_bot(db_path, fake_slack, sandbox)
    wait_until(lambda: intent_recorded(db_path), what="the intent")
    kill(process)
    # 2. and 3. Killed in the middle of the cycle, right as Slack confirms a post.
    for more in (2, 3):
        target = posted() + more
        process, _ = start_bot(db_path, fake_slack, sandbox)
        wait_until(lambda: posted() >= target, what=f"{target} posts")  # noqa: B023 - read at once
        kill(process)
    # Then it runs to the end, and a few more cycles find nothing left to post.
    process, url = start_bot(db_path, fake_slack, sandbox)
    try:
        wait_until(lambda: len(communication_messages(setup, "C1", thread)) >= len(bodies), what="all replies")
        done = cycles(url)
        wait_until(lambda: cycles(url) >= done + 2, what="two more cycles")
    finally:
        kill(process)

    messages = communication_messages(setup, "C1", thread)
    assert [shown_text(m) for m in messages] == bodies
    assert len({payload(m)["key"] for m in messages}) == len(bodies)
    assert len(status_messages(setup, "C1", thread)) == 1  # pending-customer-action, said once
    assert posted() >= len(bodies) + 1
