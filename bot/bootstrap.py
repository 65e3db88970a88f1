"""Explicit wiring: every part of a running bot built from the settings with its dependencies.

The store, the AWS gateway (real AWS, or the sandbox's) and the Slack clients are the adapters;
the case service, the sync with its poster, watches and poller, and the digests with their
refresher, schedules and worker are built on them, each with exactly what it uses.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import boto3

from bot.aws.gateway import SupportGateway
from bot.cases.service import CaseService, is_retryable
from bot.config import Settings
from bot.digest.refresh import CheckRefresher
from bot.digest.schedule import Schedules
from bot.digest.service import DigestService
from bot.digest.worker import ScheduleWorker
from bot.replicas import background_workers
from bot.services import Services
from bot.slack.channels import Channels
from bot.slack.client import slack_client
from bot.slack.files import SlackFiles
from bot.slack.messages import SlackMessages
from bot.slack.people import People
from bot.store.backend import Store, open_store
from bot.store.journal import Journal
from bot.store.tables import Store as SqliteStore
from bot.sync.cycle import CaseSync
from bot.sync.poller import Poller
from bot.sync.poster import ThreadPoster
from bot.sync.state import SyncStates
from bot.sync.watch import Watches
from bot.work import JournalWork, RetryPolicy

if TYPE_CHECKING:
    from bot.sandbox import SandboxServer

logger = logging.getLogger(__name__)


def build_services(
    settings: Settings, *, gateway: SupportGateway | None = None, store: Store | None = None
) -> Services:
    """Every part, built once; the background workers are built but not started (Services.start_workers)."""
    slack = slack_client(settings)
    services = Services(
        settings=settings,
        store=store or open_store(settings),
        gateway=gateway or SupportGateway(region=settings.aws_region),
        slack=slack,
    )
    store, gateway = services.store, services.gateway
    # One process per BOT_DB_PATH (refused at start otherwise): a lease found at start is a dead one's.
    journal = Journal(store.table("journal"), sole_owner=isinstance(store, SqliteStore))
    cases = services.cases = CaseService(
        store=store,
        gateway=gateway,
        messages=SlackMessages(slack),
        people=People(slack),
        files=SlackFiles(slack, settings.slack_bot_token, settings.slack_api_url),
        settings=settings,
        journal=journal,
        runner=JournalWork(journal, services.work, is_retryable=is_retryable, retry=RetryPolicy()),
        # The sync is built below; a sent reply wakes it so AWS's answer is looked for soon.
        on_sent=lambda case_id: services.sync.wake(case_id),
    )

    channels = Channels(slack)
    stopping = threading.Event()
    states = SyncStates(store)
    poster = ThreadPoster(channels, gateway, states, stopping)
    sync = services.sync = CaseSync(
        store=store, gateway=gateway, cases=cases, states=states, poster=poster, stopping=stopping
    )
    watches = services.watches = Watches(
        settings=settings, store=store, gateway=gateway, cases=cases, sync=sync, channels=channels
    )

    def new_poller() -> Poller:
        return Poller(sync, watches, interval=settings.poll_interval_seconds)

    services.poller = new_poller()

    digests = services.digests = DigestService(
        gateway=gateway, store=store, channels=channels, sandbox=settings.sandbox
    )
    # One clock for the whole digest feature: the schedules read the digests' (tests travel in time with it).
    schedules = services.schedules = Schedules(store, default_zone=settings.digest_timezone, clock=_clock_of(digests))
    refresher = services.refresher = CheckRefresher(digests, schedules, store)

    def new_scheduler() -> ScheduleWorker:
        return ScheduleWorker(schedules, digests, refresher)

    services.scheduler = new_scheduler()
    if settings.database_url:
        # Several replicas may share the store: the loops run on the one holding the lease, each
        # taking of the lease with fresh ones.
        services.background = background_workers(store, [new_poller, new_scheduler], shared=True)
    else:
        services.background = [services.poller, services.scheduler]
    # Every replica renews the journal leases it holds and sweeps up after dead ones: not under the lease.
    services.background.append(cases.keeper)
    return services


def _clock_of(digests: DigestService) -> Callable[[], datetime]:
    return lambda: digests.clock()


# The sandbox -------------------------------------------------------------------------------


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


def start_sandbox(options: SandboxOptions) -> SandboxServer:
    """The built-in AWS Support emulator, on a loopback port, spoken to over real HTTP by boto3."""
    from bot.sandbox import SandboxServer  # only --sandbox and the tests load the emulator

    server = SandboxServer(
        reply_delay_seconds=options.reply_delay_seconds,
        latency_seconds=options.latency_seconds,
        state_path=options.state_path,
    ).start()
    logger.info("AWS Support sandbox at %s (engineer replies after %ss)", server.url, options.reply_delay_seconds)
    return server


def sandbox_gateway(url: str, *, max_attempts: int | None = None) -> SupportGateway:
    """A gateway to the sandbox at `url`; `max_attempts` (tries per call) as SupportGateway's own."""
    # The sandbox ignores signatures, but botocore insists on signing with something.
    session = boto3.session.Session(
        aws_access_key_id="sandbox", aws_secret_access_key="sandbox", region_name="us-east-1"
    )
    if max_attempts is None:
        return SupportGateway(endpoint_url=url, session=session)
    return SupportGateway(endpoint_url=url, session=session, max_attempts=max_attempts)
