"""`python -m bot serve --sandbox` as a deployment runs it: a real process, waitress, workers, /healthz."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from tests.support.slack_requests import SlackRequests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_the_console_serves_slack_and_health_with_workers_alive(fake_slack, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_SIGNING_SECRET": "test-secret",
        "SLACK_API_URL": fake_slack.api_url,
        "BOT_DB_PATH": str(tmp_path / "bot.sqlite"),
        "BOT_SANDBOX_REPLY_SECONDS": "-1",
        "PORT": str(port),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "--sandbox"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        status, body = 0, {}
        while time.monotonic() < deadline:
            try:
                status, body = get_json(f"http://127.0.0.1:{port}/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert status == 200, body
        assert body["store"] is True and body["sandbox"] is True
        assert body["workers"] and all(worker["alive"] for worker in body["workers"].values())

        slack = SlackRequests(f"http://127.0.0.1:{port}", "test-secret", response_urls=fake_slack.response_url)
        answer = slack.slash_command("help")  # answered in the ack itself
        assert answer.status == 200
        assert "/aws-support create" in json.dumps(answer.json)
        assert slack.slash_command("help", signing="stale").status == 401
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output = process.communicate(timeout=15)[0].decode()
        except subprocess.TimeoutExpired:
            process.kill()
            output = process.communicate()[0].decode()
    assert "xoxb-test-token" not in output


def test_socket_mode_connects_through_slack_api_url_and_explains_a_refusal(fake_slack, tmp_path):
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_APP_TOKEN": "xapp-1-test-token",
        "SLACK_API_URL": fake_slack.api_url,
        "BOT_DB_PATH": str(tmp_path / "bot.sqlite"),
        "PORT": str(free_port()),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    fake_slack.fail("apps.connections.open", error="invalid_auth", count=1)
    done = subprocess.run(
        [sys.executable, "-m", "bot", "--sandbox"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "Socket Mode" in done.stderr and "invalid_auth" in done.stderr
    assert "xapp-1-test-token" not in done.stderr + done.stdout
    [call] = fake_slack.calls("apps.connections.open")
    assert call.authorization == "Bearer xapp-1-test-token"
