"""Assembles a running bot from settings: store, gateway (real AWS or the sandbox), Slack client."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import boto3

from bot.aws.gateway import SupportGateway
from bot.config import Settings
from bot.services import Services, slack_client
from bot.store.tables import Store

logger = logging.getLogger(__name__)


@dataclass
class SandboxOptions:
    reply_delay_seconds: float = 30.0
    latency_seconds: float = 0.0
    state_path: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxOptions:
        return cls(
            reply_delay_seconds=settings.sandbox_reply_seconds,
            latency_seconds=settings.sandbox_latency_seconds,
            state_path=settings.sandbox_state_path,
        )


def start_sandbox(options: SandboxOptions):
    """The built-in AWS Support emulator, on a loopback port, spoken to over real HTTP by boto3."""
    from bot.sandbox import SandboxServer

    server = SandboxServer(
        reply_delay_seconds=options.reply_delay_seconds,
        latency_seconds=options.latency_seconds,
        state_path=options.state_path,
    ).start()
    logger.info("AWS Support sandbox at %s (engineer replies after %ss)", server.url, options.reply_delay_seconds)
    return server


def sandbox_gateway(url: str) -> SupportGateway:
    # The sandbox ignores signatures, but botocore insists on signing with something.
    session = boto3.session.Session(
        aws_access_key_id="sandbox", aws_secret_access_key="sandbox", region_name="us-east-1"
    )
    return SupportGateway(endpoint_url=url, session=session)


def build_services(
    settings: Settings, *, gateway: SupportGateway | None = None, store: Store | None = None
) -> Services:
    if gateway is None:
        gateway = SupportGateway(region=settings.aws_region)
    return Services(
        settings=settings,
        store=store or Store.open(settings.db_path),
        gateway=gateway,
        slack=slack_client(settings),
    )
