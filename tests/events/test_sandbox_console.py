"""`python -m bot --sandbox` shows live updates out of the box: an AWS reply is in its thread within seconds."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
import time

from tests.events.queues import boto_session
from tests.sandbox.helpers import open_case, wait_until
from tests.support.http import request
from tests.support.slack_requests import SlackRequests
from tests.test_serve import console_env, free_port, get_json, stop_serving


def test_the_sandbox_console_brings_an_aws_reply_by_its_event(fake_slack, tmp_path) -> None:
    port = free_port()
    env = console_env(fake_slack, tmp_path, PORT=str(port), LOG_LEVEL="INFO")
    env.pop("POLL_INTERVAL_SECONDS", None)
    env.pop("BOT_SANDBOX_EVENTS", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "--sandbox"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout or []], daemon=True).start()
    try:
        sandbox_url = ""
        deadline = time.monotonic() + 30
        while not sandbox_url and time.monotonic() < deadline:
            found = re.search(r"AWS Support sandbox at (http://\S+)", lines.get(timeout=30))
            sandbox_url = found.group(1) if found else ""
        assert sandbox_url

        def healthy() -> dict | None:
            try:
                status, body = get_json(f"http://127.0.0.1:{port}/healthz")
            except OSError:
                return None
            return body if status == 200 else None

        body = wait_until(healthy, timeout=30)
        assert body, "the bot did not become healthy"
        events = body["workers"]["events"]
        assert events["alive"] and events["queue"] == "support-case-updates"
        assert body["workers"]["poller"]["interval_seconds"] == 900  # events on: polling is the backstop

        support = boto_session().client("support", endpoint_url=sandbox_url)
        case_id = open_case(support, "Live in the sandbox")
        slack = SlackRequests(f"http://127.0.0.1:{port}", "test-secret", response_urls=fake_slack.response_url)
        assert slack.slash_command(f"link {case_id}", channel_id="C1", user_id="U1").status == 200
        [card] = fake_slack.wait_for("chat.postMessage", lambda c: c.params.get("channel") == "C1", timeout=15)
        thread = card.response["ts"] if isinstance(card.response, dict) else json.loads(card.response)["ts"]
        # The poller's first cycle saw the case; whatever comes now comes through the event.
        assert wait_until(lambda: get_json(f"http://127.0.0.1:{port}/healthz")[1]["workers"]["poller"]["cycles"] >= 1)

        sent = time.monotonic()
        reply = {"case_id": case_id, "body": "Answered from the sandbox's AWS."}
        posted = request(
            "POST",
            f"{sandbox_url}/_sandbox/reply",
            data=json.dumps(reply).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert posted.status == 200, posted.text

        def in_thread() -> bool:
            replies = [m for m in fake_slack.messages("C1", thread) if m["ts"] != thread]
            return any("Answered from the sandbox" in json.dumps(m) for m in replies)

        assert wait_until(in_thread, timeout=15)
        assert time.monotonic() - sent < 10
    finally:
        stop_serving(process, timeout=30)
