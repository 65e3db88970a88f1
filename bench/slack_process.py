"""The Slack that the benchmarked apps talk to (FakeSlack), in a process of its own at the lowest CPU priority.

In the process that times the acks, FakeSlack's handler threads took that process's interpreter lock
whenever a bot answered on a response URL, and the time was charged to whichever app was being
measured then. In production Slack's CPU is not on the bot's machine; the sandbox (AWS) runs the
same way, for the same reason.

    python -m bench.slack_process    # prints its base URL, serves until its standard input closes
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
from typing import Any
from urllib.parse import parse_qs, quote

from tests.support.fake_slack import TEAM_ID, FakeSlack

ANSWERS_PATH = "/_bench/answers"


class _CountingSlack(FakeSlack):
    """FakeSlack that also tells how many response-URL answers it took (GET ANSWERS_PATH?containing=)."""

    def handle(self, http_method: str, path: str, query: str, headers: Any, body: bytes) -> tuple:
        if path != ANSWERS_PATH:
            return super().handle(http_method, path, query, headers, body)
        needle = parse_qs(query).get("containing", [""])[0]
        answers = [json.dumps(call.params) for call in self.calls("response_url")]
        others = [answer[:200] for answer in answers if needle not in answer]
        summary = {"all": len(answers), "matching": len(answers) - len(others), "others": others[:5]}
        return 200, {"Content-Type": "application/json"}, json.dumps(summary).encode()


class SlackProcess:
    """A handle on the FakeSlack process: what the apps need (api_url, response URLs) and its counts."""

    def __init__(self) -> None:
        command = ["nice", "-n", "19", sys.executable, "-m", "bench.slack_process"]
        # Its stderr is dropped: bots stopped at the end of a run break off their last answers mid-way.
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.base_url = self._process.stdout.readline().strip()  # type: ignore[union-attr]
        if not self.base_url.startswith("http"):
            self.stop()
            raise RuntimeError("the Slack stand-in did not start")

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/"

    def response_url(self) -> str:
        return f"{self.base_url}/commands/{TEAM_ID}/{uuid.uuid4().hex}"

    def answers(self, containing: str = "") -> dict[str, Any]:
        """{"all": answers on response URLs, "matching": those containing the text, "others": 5 others}."""
        url = f"{self.base_url}{ANSWERS_PATH}?containing={quote(containing)}"
        with urllib.request.urlopen(url, timeout=30) as answer:
            return json.load(answer)

    def stop(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()


def main() -> None:
    fake = _CountingSlack(any_response_url=True).start()
    print(fake.base_url, flush=True)
    sys.stdin.read()  # until the benchmark closes it, or exits
    fake.stop()


if __name__ == "__main__":
    main()
