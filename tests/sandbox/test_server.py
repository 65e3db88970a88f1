"""The server as a whole: latency under concurrency, and `python -m bot.sandbox` as its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bot.sandbox import SandboxServer

REPO = Path(__file__).resolve().parents[2]


def test_latency_is_served_concurrently(server: SandboxServer, boto_session: boto3.session.Session) -> None:
    config = Config(max_pool_connections=20, retries={"mode": "standard", "max_attempts": 1})
    client = boto_session.client("support", endpoint_url=server.url, config=config)
    server.set_latency(0.3)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda _: client.describe_severity_levels(), range(20)))
    elapsed = time.monotonic() - started

    assert all(len(r["severityLevels"]) == 5 for r in results)
    assert 0.3 <= elapsed < 3.0  # twenty requests in parallel (one after another would take 6 s)
    assert server.calls["DescribeSeverityLevels"] == 20


def test_context_manager_starts_and_stops() -> None:
    with SandboxServer(reply_delay_seconds=None) as sandbox:
        with urllib.request.urlopen(sandbox.url + "/_sandbox/health", timeout=5) as response:
            assert json.loads(response.read())["status"] == "ok"
        url = sandbox.url
    try:
        urllib.request.urlopen(url + "/_sandbox/health", timeout=1)
    except OSError:
        pass
    else:
        raise AssertionError("the server still answers after stop()")


def test_standalone_process(tmp_path: Path, boto_session: boto3.session.Session) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.sandbox",
            "--port",
            "0",
            "--reply-delay",
            "-1",
            "--state",
            str(tmp_path / "s.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        url = process.stdout.readline().strip() if process.stdout else ""
        assert url.startswith("http://127.0.0.1:")
        client: Any = boto_session.client("support", endpoint_url=url)
        case_id = client.create_case(subject="From another process", communicationBody="hello")["caseId"]
        request = urllib.request.Request(
            url + "/_sandbox/reply",
            data=json.dumps({"case_id": case_id, "body": "Hi from AWS"}).encode(),
            method="POST",
        )
        urllib.request.urlopen(request, timeout=5).close()

        communications = client.describe_communications(caseId=case_id)["communications"]

        assert [c["body"] for c in communications] == ["Hi from AWS", "hello"]
        with urllib.request.urlopen(url + "/_sandbox/calls", timeout=5) as response:
            assert json.loads(response.read())["calls"] == {"CreateCase": 1, "DescribeCommunications": 1}
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0
    assert (tmp_path / "s.json").exists()
