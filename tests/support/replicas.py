"""Bot replicas as a deployment runs them: `python -m bot serve` processes on one PostgreSQL database,
against the sandbox (AWS_ENDPOINT_URL_SUPPORT) and a fake Slack. Used by the end-to-end test and bench."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.fake_slack import BOT_TOKEN
from tests.support.http import request

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Replica:
    process: subprocess.Popen
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def health(self) -> dict[str, Any] | None:
        """/healthz's body when it answers 200, else None."""
        try:
            response = request("GET", self.url + "/healthz")
        except OSError:
            return None
        return response.json if response.status == 200 else None

    def lease(self) -> dict[str, Any]:
        """What /healthz says of the background lease ({} before it answers)."""
        body = self.health() or {}
        return (body.get("workers") or {}).get("lease") or {}

    def poll_cycles(self) -> int:
        """Poll cycles this replica completed; -1 while it does not run the poller."""
        poller = ((self.health() or {}).get("workers") or {}).get("poller") or {}
        return -1 if poller.get("standby", True) else int(poller.get("cycles", 0))

    def kill(self) -> None:
        """kill -9: no shutdown, no release of the lease."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def start_replica(
    database_url: str, slack_api_url: str, aws_url: str, workdir: Path, *, poll_seconds: float = 1
) -> Replica:
    """A bot process on `database_url`; its log goes to a file in `workdir`."""
    port = free_port()
    log = workdir / f"replica-{port}.log"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "HOME": os.environ.get("HOME", "/tmp"),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": "test-secret",
        "SLACK_API_URL": slack_api_url,
        "DATABASE_URL": database_url,
        "BOT_DB_PATH": str(workdir / "unused.sqlite"),
        "POLL_INTERVAL_SECONDS": str(poll_seconds),
        "PORT": str(port),
        "AWS_ENDPOINT_URL_SUPPORT": aws_url,
        "AWS_ACCESS_KEY_ID": "sandbox",
        "AWS_SECRET_ACCESS_KEY": "sandbox",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1,localhost",
        "LOG_LEVEL": "INFO",
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    return Replica(process, f"http://127.0.0.1:{port}", log)


def wait_for(condition: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
