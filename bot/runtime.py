"""Assembles a running bot from settings: store, gateway (real AWS or the sandbox), Slack client."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import boto3

from bot.aws.gateway import SupportGateway
from bot.config import Settings
from bot.services import Services
from bot.slack.client import slack_client
from bot.store.backend import open_store

logger = logging.getLogger(__name__)


@dataclass
class SandboxOptions:
    reply_delay_seconds: float = 30.0
    latency_seconds: float = 0.0
    state_path: str | None = None

    @classmethod
    def from_env(cls, settings: Settings) -> SandboxOptions:
        default_state = os.path.join(os.path.dirname(os.path.abspath(settings.db_path)), "sandbox.json")
        return cls(
            reply_delay_seconds=float(os.environ.get("BOT_SANDBOX_REPLY_SECONDS", "30")),
            latency_seconds=float(os.environ.get("BOT_SANDBOX_LATENCY_SECONDS", "0")),
            state_path=os.environ.get("BOT_SANDBOX_STATE", default_state) or None,
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


def build_services(settings: Settings, *, gateway: SupportGateway | None = None) -> Services:
    if gateway is None:
        gateway = SupportGateway(region=settings.aws_region)
    return Services(
        settings=settings,
        store=open_store(settings),
        gateway=gateway,
        slack=slack_client(settings),
    )
