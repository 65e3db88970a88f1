"""Explicit wiring: every part of a running bot built from the settings with its dependencies.

The store, the AWS gateway (real AWS, or the sandbox's) and the Slack clients are the adapters;
the case service, the sync with its poster, watches and poller, and the digests with their
refresher, schedules and worker are built on them, each with exactly what it uses.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3

from bot import render
from bot.accounts.config import (
    Account,
    AccountsConfig,
    Defaults,
    load_accounts_file,
    partition_of,
    single_account,
)
from bot.accounts.directory import AccountDirectory, build_directory
from bot.accounts.routing import AccountGateways
from bot.accounts.sessions import AccountSessions, account_gateways
from bot.aws.gateway import SupportGateway
from bot.aws.session import new_session
from bot.cases.service import CaseService, is_retryable
from bot.config import EVENTS_POLL_INTERVAL_SECONDS, Settings
from bot.digest.refresh import CheckRefresher
from bot.digest.schedule import Schedules
from bot.digest.service import DigestService
from bot.digest.worker import ScheduleWorker
from bot.events.consumer import ConsumerOptions, EventConsumer
from bot.events.sqs import sqs_client
from bot.events.watch import PipelineWatch
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
from bot.sync.events import CaseEventHandler, single_gateway
from bot.sync.poller import Poller
from bot.sync.poster import ThreadPoster
from bot.sync.state import SyncStates
from bot.sync.watch import Watches
from bot.work import JournalWork, RetryPolicy

if TYPE_CHECKING:
    from bot.sandbox import SandboxServer

logger = logging.getLogger(__name__)

SANDBOX_ROLE = "AwsSupportBot"


@dataclass
class EventQueue:
    """Where live updates come from: an SQS client for BOT_EVENTS_QUEUE_URL, and how to read it."""

    client: Any
    options: ConsumerOptions = field(default_factory=ConsumerOptions)


def build_services(
    settings: Settings,
    *,
    gateway: SupportGateway | None = None,
    store: Store | None = None,
    aws_endpoint_url: str | None = None,
    max_attempts: int | None = None,
    events: EventQueue | None = None,
) -> Services:
    """Every part, built once; the background workers are built but not started (Services.start_workers).

    `gateway` serves the one account of a bot without BOT_ACCOUNTS_FILE; `aws_endpoint_url` (the
    sandbox) answers STS, Organizations and Support for every account when there are several; `store`
    is the one the console opened first (so a second process is refused before anything starts).
    With settings.events_on, `events` (default: a client botocore points at AWS_ENDPOINT_URL_SQS or
    the queue's region) feeds the event consumer.
    """
    slack = slack_client(settings)
    store = store or open_store(settings)
    try:
        directory, gateways = build_accounts(
            settings, store, gateway=gateway, aws_endpoint_url=aws_endpoint_url, max_attempts=max_attempts
        )
    except BaseException:
        store.close()
        raise
    one = directory.accounts[0].alias
    services = Services(
        settings=settings,
        store=store,
        # One account: its own gateway, exactly as before; several: one routing by case.
        gateway=gateways[one] if directory.single else AccountGateways(directory, gateways),
        slack=slack,
        accounts=directory,
        gateways=gateways,
    )
    gateway = services.gateway
    # One process per BOT_DB_PATH (refused at start otherwise): a lease found at start is a dead one's.
    journal = Journal(
        store.table("journal"),
        lease_seconds=settings.journal_lease_seconds,
        sole_owner=isinstance(store, SqliteStore),
    )
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
    routing = services.routing
    if routing is not None:
        sync.may_show = lambda case_id, channel: routing.account_of(case_id).allowed_in(channel)
        cases.cards.check_channel = lambda case_id, channel: services.check_ref(channel, case_id)
    watches = services.watches = Watches(
        settings=settings, store=store, gateway=gateway, cases=cases, sync=sync, channels=channels
    )
    watches.migrate()  # the previous release's one watch per channel, as watches per account
    # Before anything serves or polls: the accounts file may have taken a linked channel off an account.
    services.unlink_channels_taken_off_accounts()

    # One watch for the poller and the consumer: polls that keep finding changes while no event
    # arrives say the event pipeline is broken.
    pipeline = PipelineWatch() if settings.events_on else None

    def new_poller() -> Poller:
        return Poller(
            sync, watches, interval=settings.poll_interval_seconds, pipeline=pipeline, behind=services.work.gate
        )

    services.poller = new_poller()
    live: list[Callable[[], EventConsumer]] = []
    if settings.events_on:
        queue = events or EventQueue(sqs_client(settings.events_queue_url, session=new_session()))
        # Several accounts: an event of an account the bot does not serve (an organisation-wide rule
        # forwards every account's) is left alone, rather than routed by its case ID to the default account.
        own = directory.accounts[0]
        gateway_for = (
            routing.serving
            if routing is not None
            else single_gateway(gateway, lambda: directory.account_id(own))  # asked of STS once
        )
        handler = CaseEventHandler(sync=sync, watches=watches, gateway_for=gateway_for)

        def new_consumer() -> EventConsumer:
            return EventConsumer(
                queue.client,
                settings.events_queue_url,
                handler,
                options=queue.options,
                watch=pipeline,
                behind=services.work.gate,
            )

        live.append(new_consumer)

    digests = services.digests = DigestService(
        gateway=gateway, store=store, channels=channels, sandbox=settings.sandbox, directory=services.accounts
    )
    # One clock for the whole digest feature: the schedules read the digests' (tests travel in time with it).
    schedules = services.schedules = Schedules(store, default_zone=settings.digest_timezone, clock=_clock_of(digests))
    refresher = services.refresher = CheckRefresher(digests, schedules, store, journal=journal, runner=cases.runner)

    def new_scheduler() -> ScheduleWorker:
        return ScheduleWorker(schedules, digests, refresher, behind=services.work.gate)

    services.scheduler = new_scheduler()
    if settings.database_url:
        # Several replicas may share the store: the loops run on the one holding the lease (the
        # consumer with the poller, so that one replica syncs), each taking of the lease with fresh ones.
        services.background = background_workers(store, [new_poller, *live, new_scheduler], shared=True)
    else:
        services.background = [services.poller, *(factory() for factory in live), services.scheduler]
    # Every replica renews the journal leases it holds and sweeps up after dead ones: not under the lease.
    services.background.append(cases.keeper)
    return services


def prepare_to_serve(services: Services) -> threading.Thread:
    """Before the port opens: what every ack needs. Beside serving (the returned thread): the rest.

    Compiling the templates (the help text, every short answer) is CPU work of a second or more.
    Left to the first requests, a burst right after a start compiles them in every request thread at
    once, under one interpreter lock, and every ack of the burst misses Slack's 3 s. What waits on AWS
    (preloading the Create form's options, resuming interrupted work) must not delay serving.

    What start-up built (AWS models, templates, clients) lives as long as the process. Frozen out of
    the collector, it is no longer walked by every full collection, which otherwise held the
    interpreter lock for 40-70 ms in the middle of a burst of acks.
    """
    render.warm_up()
    gc.collect()
    gc.freeze()
    recovery = threading.Thread(target=services.recover, name="recover", daemon=True)
    recovery.start()
    return recovery


def load_accounts(settings: Settings) -> AccountsConfig:
    """BOT_ACCOUNTS_FILE, checked (AccountsFileError, a ConfigError, names every mistake); none: the one account."""
    if not settings.accounts_file:
        return single_account()
    return load_accounts_file(settings.accounts_file, partition=partition_of(settings.aws_region))


def build_accounts(
    settings: Settings,
    store: Store,
    *,
    gateway: SupportGateway | None = None,
    aws_endpoint_url: str | None = None,
    max_attempts: int | None = None,
) -> tuple[AccountDirectory, dict[str, SupportGateway]]:
    """The accounts the bot serves, and a gateway for each (alias -> gateway)."""
    config = load_accounts(settings)
    if config.source is None and settings.sandbox_accounts > 1 and aws_endpoint_url:
        config = sandbox_accounts_config(settings.sandbox_accounts)
    elif config.source is None and settings.sandbox and aws_endpoint_url:
        from bot.sandbox.accounts import account_alias

        config = single_account(alias=account_alias(1))  # the one emulated account: named as the first of several
    if config.source is None and len(config.accounts) == 1 and config.accounts[0].role_arn is None:
        # Today's bot: the one account of its own credentials, its gateway as given.
        own = gateway or (
            sandbox_gateway(aws_endpoint_url, max_attempts=max_attempts, region=settings.aws_region)
            if aws_endpoint_url
            else SupportGateway(region=settings.aws_region)
        )
        directory = AccountDirectory(config.accounts, store=store, own_account_id=own.account_id)
        return directory, {config.accounts[0].alias: own}
    base = _sandbox_session() if aws_endpoint_url else None
    sessions = AccountSessions(base_session=base, region=settings.aws_region, sts_endpoint_url=aws_endpoint_url)
    own_gateway = SupportGateway(
        session=sessions.base_session,
        endpoint_url=aws_endpoint_url,
        region=settings.aws_region,
        **({"max_attempts": max_attempts} if max_attempts is not None else {}),
    )
    directory = build_directory(
        config,
        store=store,
        base_session=sessions.base_session,
        region=settings.aws_region,
        organizations_endpoint_url=aws_endpoint_url,
        own_account_id=own_gateway.account_id,
    )
    gateways = account_gateways(
        [a for a in directory if a.role_arn is not None],
        sessions,
        region=settings.aws_region,
        endpoint_url=aws_endpoint_url,
        max_attempts=max_attempts,
    )
    gateways.update({a.alias: own_gateway for a in directory if a.role_arn is None})
    gateways = {a.alias: gateways[a.alias] for a in directory}  # in the directory's order
    for problem in directory.problems:
        logger.warning("%s", problem)
    return directory, gateways


def sandbox_accounts_config(count: int) -> AccountsConfig:
    """BOT_SANDBOX_ACCOUNTS=N without a file: sandbox (the bot's own credentials), sandbox-2, … by role."""
    from bot.sandbox.accounts import account_alias, account_id

    accounts = [Account(alias=account_alias(1), id=account_id(1))]
    accounts += [
        Account(alias=account_alias(i), id=account_id(i), role_arn=f"arn:aws:iam::{account_id(i)}:role/{SANDBOX_ROLE}")
        for i in range(2, count + 1)
    ]
    return AccountsConfig(accounts=tuple(accounts), defaults=Defaults(role_name=SANDBOX_ROLE), source="sandbox")


def _clock_of(digests: DigestService) -> Callable[[], datetime]:
    return lambda: digests.clock()


# The sandbox -------------------------------------------------------------------------------


@dataclass
class SandboxOptions:
    reply_delay_seconds: float = 30.0
    latency_seconds: float = 0.0
    state_path: str | None = None
    accounts: int = 1
    # Live updates through the sandbox's own queue: free, and it shows an AWS reply within seconds.
    events: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxOptions:
        return cls(
            reply_delay_seconds=settings.sandbox_reply_seconds,
            latency_seconds=settings.sandbox_latency_seconds,
            state_path=settings.sandbox_state_path,
            accounts=settings.sandbox_accounts,
            events=os.environ.get("BOT_SANDBOX_EVENTS", "1").strip().lower() not in {"0", "false", "no", "off"},
        )


def start_sandbox(options: SandboxOptions) -> SandboxServer:
    """The built-in AWS Support emulator, on a loopback port, spoken to over real HTTP by boto3."""
    from bot.sandbox import SandboxServer  # only --sandbox and the tests load the emulator

    server = SandboxServer(
        accounts=options.accounts,
        reply_delay_seconds=options.reply_delay_seconds,
        latency_seconds=options.latency_seconds,
        state_path=options.state_path,
        events=options.events,
    ).start()
    logger.info("AWS Support sandbox at %s (engineer replies after %ss)", server.url, options.reply_delay_seconds)
    if server.events_queue_url:
        logger.info("live updates from the sandbox's queue %s", server.events_queue_url)
    return server


def _sandbox_session() -> boto3.session.Session:
    # The sandbox ignores signatures, but botocore insists on signing with something; these
    # credentials are its management account's (the first), from which the others' roles are assumed.
    return new_session(aws_access_key_id="sandbox", aws_secret_access_key="sandbox", region_name="us-east-1")


def sandbox_settings(settings: Settings, sandbox: SandboxServer, env: dict[str, str] | None = None) -> Settings:
    """The settings with the sandbox's event queue, when it has one (BOT_SANDBOX_EVENTS, on by default):
    the poll interval's default becomes the backstop's, as with a real queue."""
    queue_url = sandbox.events_queue_url
    if not queue_url:
        return settings
    env = dict(os.environ) if env is None else env
    interval = settings.poll_interval_seconds
    if not env.get("POLL_INTERVAL_SECONDS", "").strip():
        interval = EVENTS_POLL_INTERVAL_SECONDS
    return replace(settings, events_queue_url=queue_url, poll_interval_seconds=interval)


def sandbox_events(sandbox: SandboxServer) -> EventQueue | None:
    """The client for the sandbox's queue (the AWS_ENDPOINT_URL_SQS a real deployment would set)."""
    queue_url = sandbox.events_queue_url
    if not queue_url:
        return None
    return EventQueue(sqs_client(queue_url, session=_sandbox_session(), endpoint_url=sandbox.url))


def sandbox_gateway(url: str, *, max_attempts: int | None = None, region: str = "us-east-1") -> SupportGateway:
    """A gateway to the sandbox at `url`; `max_attempts` (tries per call) as SupportGateway's own; `region`
    as AWS_SUPPORT_REGION, for the console links of its partition."""
    session = _sandbox_session()
    if max_attempts is None:
        return SupportGateway(endpoint_url=url, session=session, region=region)
    return SupportGateway(endpoint_url=url, session=session, max_attempts=max_attempts, region=region)
