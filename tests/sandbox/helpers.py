"""Small helpers shared by the sandbox tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

EC2 = "amazon-elastic-compute-cloud-linux"


def open_case(client: Any, subject: str = "Instance unreachable", **overrides: Any) -> str:
    params = {
        "subject": subject,
        "communicationBody": "Our instance stopped answering on port 443.",
        "serviceCode": EC2,
        "categoryCode": "instance-issue",
        "severityCode": "high",
        "language": "en",
        "issueType": "technical",
    }
    params.update(overrides)
    return client.create_case(**params)["caseId"]


def wait_until(condition: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll until `condition()` is truthy; generous timeout, short steps, so tests never oversleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def attempts(gateway: Any) -> int:
    """How many calls botocore makes for one gateway call that keeps failing (first call + retries)."""
    return int(gateway.client.meta.config.retries["total_max_attempts"])
