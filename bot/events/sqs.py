"""The SQS client the consumer long-polls with.

It belongs with the other AWS clients in bot/aws/ once that package's rework lands; it lives here
until then so that nothing else had to change. botocore honours AWS_ENDPOINT_URL_SQS itself when
`endpoint_url` is None, which is how the sandbox's queue (or moto's) is reached.
"""

from __future__ import annotations

import re
from typing import Any

import boto3
from botocore.config import Config

DEFAULT_REGION = "us-east-1"
# https://sqs.eu-west-1.amazonaws.com/123456789012/name, and the legacy eu-west-1.queue.amazonaws.com
_REGION_IN_HOST = re.compile(r"^https?://(?:sqs\.([a-z0-9-]+)\.amazonaws\.com|([a-z0-9-]+)\.queue\.amazonaws\.com)")


def queue_region(queue_url: str) -> str | None:
    match = _REGION_IN_HOST.match(queue_url)
    return (match.group(1) or match.group(2)) if match else None


def queue_name(queue_url: str) -> str:
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


def sqs_client(
    queue_url: str,
    *,
    session: boto3.session.Session | None = None,
    endpoint_url: str | None = None,
    wait_seconds: int = 20,
) -> Any:
    """A client in the queue's own region, whose read timeout outlasts a long poll."""
    session = session or boto3.session.Session()
    region = queue_region(queue_url) or session.region_name or DEFAULT_REGION
    config = Config(
        # A long poll holds the connection for wait_seconds; reading must wait longer than that.
        read_timeout=wait_seconds + 10,
        connect_timeout=5,
        # The consumer backs off on its own; botocore retries once for a transient blip.
        retries={"mode": "standard", "max_attempts": 2},
    )
    return session.client("sqs", region_name=region, endpoint_url=endpoint_url, config=config)
