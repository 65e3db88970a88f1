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
from concurrent.futures import ThreadPoolExecutor

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


def console_env(fake_slack, tmp_path, **extra: str) -> dict[str, str]:
    """What `python -m bot --sandbox` needs to serve the fake Slack from tmp_path, plus `extra`."""
    return {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_SIGNING_SECRET": "test-secret",
        "SLACK_API_URL": fake_slack.api_url,
        "BOT_DB_PATH": str(tmp_path / "bot.sqlite"),
        "BOT_SANDBOX_REPLY_SECONDS": "-1",
        "NO_PROXY": "127.0.0.1,localhost",
        **extra,
    }


def test_the_console_serves_slack_and_health_with_workers_alive(fake_slack, tmp_path):
    port = free_port()
    env = console_env(fake_slack, tmp_path, PORT=str(port))
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
        output = stop_serving(process)[0].decode()
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


def start_serving(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "--sandbox"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def stop_serving(process: subprocess.Popen, timeout: float = 15) -> tuple:
    """SIGTERM, as a deploy stops the bot; killed if it has not ended within `timeout`. Its (stdout, stderr)."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()


def wait_healthy(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if get_json(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"no healthy bot on port {port} within {timeout}s")


def test_a_second_process_on_the_same_db_path_is_refused_until_the_first_is_gone(fake_slack, tmp_path):
    """A rolling deploy starts the new process beside the old one: two pollers would post every AWS
    reply twice. The second is refused with one clear line; once the first dies (even by kill -9,
    the OS drops its lock), a new one starts on the same file."""
    env = console_env(fake_slack, tmp_path)
    first_port, second_port, third_port = free_port(), free_port(), free_port()
    first = start_serving({**env, "PORT": str(first_port)})
    processes = [first]
    try:
        wait_healthy(first_port, first)

        second = start_serving({**env, "PORT": str(second_port)})
        processes.append(second)
        try:
            _, errors = second.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError("the second process runs beside the first") from None
        assert second.returncode == 2, errors
        assert "Traceback" not in errors
        [line] = errors.strip().splitlines()
        assert "BOT_DB_PATH" in line and str(tmp_path / "bot.sqlite") in line
        assert "DATABASE_URL" in line and f"pid {first.pid}" in line
        assert get_json(f"http://127.0.0.1:{first_port}/healthz")[0] == 200  # the first serves on

        first.kill()
        first.wait(timeout=15)
        third = start_serving({**env, "PORT": str(third_port)})
        processes.append(third)
        wait_healthy(third_port, third)
    finally:
        for process in processes:
            if process.poll() is None:
                stop_serving(process)


def test_a_burst_of_slash_commands_right_after_a_start_is_acked_in_time(fake_slack, tmp_path):
    """A deploy restarts the bot while people type: the first requests are a burst. Each request
    thread used to compile the templates itself (a second of CPU, all on one interpreter lock), so
    every ack of a 12-request burst missed Slack's 3 s and Bolt answered 404 "unhandled request".
    AWS answers slowly meanwhile (the start's preloading and first poll wait on it): nothing of that
    may hold up an ack either."""
    port = free_port()
    env = console_env(fake_slack, tmp_path, BOT_SANDBOX_LATENCY_SECONDS="2", PORT=str(port))
    process = start_serving(env)
    try:
        wait_healthy(port, process)
        slack = SlackRequests(f"http://127.0.0.1:{port}", "test-secret", response_urls=fake_slack.response_url)
        words = ["help", "list", "frobnicate"] * 6

        def command(text: str):
            return slack.slash_command(text, channel_id="C1")

        with ThreadPoolExecutor(max_workers=len(words)) as pool:
            answers = list(pool.map(command, words))
        # Bolt answers 404 when a listener has not acked within its 3 s: a 200 is an ack in time.
        assert [answer.status for answer in answers] == [200] * len(words), [a.body for a in answers]
        for word, answer in zip(words, answers, strict=True):
            if word == "help":
                assert "/aws-support create" in json.dumps(answer.json)
            if word == "frobnicate":
                assert "frobnicate" in json.dumps(answer.json)
    finally:
        stop_serving(process)


def test_a_slash_command_served_just_before_a_deploy_stops_the_bot_is_refused_after_it(fake_slack, tmp_path):
    """A deploy stops the bot with SIGTERM. On a BOT_DB_PATH file the replay claim is decided in memory
    and written moments after the ack: the stop must write it, or the same signed request replayed
    to the new process within Slack's 5 minutes is served again."""
    from urllib.parse import urlencode

    from tests.support.slack_requests import sign

    env = console_env(fake_slack, tmp_path)
    fields = {"command": "/aws-support", "text": "help", "team_id": "T0FAKE", "user_id": "U1", "channel_id": "C1"}
    body = urlencode(dict(fields, response_url=fake_slack.response_url(), trigger_id="1.2.deployed")).encode()
    timestamp = str(int(time.time()))
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": sign("test-secret", timestamp, body)}
    answers = []
    for _ in range(2):
        port = free_port()
        process = start_serving({**env, "PORT": str(port)})
        try:
            wait_healthy(port, process)
            slack = SlackRequests(f"http://127.0.0.1:{port}", "test-secret")
            answers.append(slack.post(body, "application/x-www-form-urlencoded", signing="unsigned", headers=headers))
        finally:
            stop_serving(process)  # at once, as a deploy may: right after the ack
    served, replayed = answers
    assert served.status == 200 and "/aws-support create" in served.text
    assert replayed.status == 200 and replayed.text == ""
