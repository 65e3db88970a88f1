"""Fixtures for the sandbox tests: a fresh emulator per test, real boto3 and the project's gateway."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from bot.aws.gateway import SupportGateway
from bot.aws.session import new_session
from bot.bootstrap import sandbox_gateway
from bot.sandbox import SandboxServer


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    """The engineer stays silent (tests write his replies with add_aws_reply)."""
    sandbox = SandboxServer(reply_delay_seconds=None).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture(scope="session")
def boto_session() -> boto3.session.Session:
    # One session for every test: botocore loads the Support model once per session.
    return new_session(
        aws_access_key_id="AKIDSANDBOX", aws_secret_access_key="secret", region_name="us-east-1"
    )


@pytest.fixture
def client(server: SandboxServer, boto_session: boto3.session.Session) -> Any:
    """Plain boto3, no retries, so every injected fault surfaces as it is."""
    # botocore's "max_attempts" counts retries; "total_max_attempts" counts the first call too.
    config = Config(retries={"mode": "standard", "total_max_attempts": 1})
    return boto_session.client("support", endpoint_url=server.url, config=config)


@pytest.fixture
def gateway(server: SandboxServer) -> SupportGateway:
    """The project's gateway exactly as `--sandbox` builds it (retries on)."""
    return sandbox_gateway(server.url)


@pytest.fixture
def gateway_no_retry(server: SandboxServer, boto_session: boto3.session.Session) -> SupportGateway:
    """The gateway as a caller asks for no retries (max_attempts=1); see attempts() for what botocore does."""
    return SupportGateway(endpoint_url=server.url, session=boto_session, max_attempts=1)
