"""The bot's parts, built once per process by bootstrap.py and handed to listeners through Bolt's context."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot import render
from bot.aws.gateway import SupportGateway
from bot.cases.service import CaseService
from bot.config import Settings
from bot.digest.refresh import CheckRefresher
from bot.digest.schedule import Schedules
from bot.digest.service import DigestService
from bot.digest.worker import ScheduleWorker
from bot.errors import BotError
from bot.store.backend import Store
from bot.sync.cycle import CaseSync
from bot.sync.poller import Poller
from bot.sync.watch import Watches
from bot.work import OrderedWork

logger = logging.getLogger(__name__)


class Worker(Protocol):
    """A background loop in the bot's process (poller, digest scheduler)."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def is_alive(self) -> bool: ...

    def health(self) -> dict[str, object]: ...


def slack_client(settings: Settings) -> WebClient:
    """Every Web API call goes through a client like this: SLACK_API_URL, resent only on 429.

    A 429 means Slack did nothing, so resending (after Retry-After) is safe. A 5xx or a dropped
    connection may come after Slack stored a message: resending would post it twice, so those
    fail to the caller, which knows whether a retry is safe.
    """
    client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=30)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=5))
    return client


@dataclass
class Services:
    """What listeners and the console reach: the adapters, and the domain's services built on them.

    The services are set by bootstrap.build_services right after the adapters (CaseService still
    takes this container, so it must exist first).
    """

    settings: Settings
    store: Store
    gateway: SupportGateway
    slack: WebClient
    # Bolt runs listeners here; they only parse, ack and hand the slow part to `work`.
    listener_executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=32, thread_name_prefix="listener")
    )
    work: OrderedWork = field(default_factory=lambda: OrderedWork(max_workers=64))
    cases: CaseService = field(init=False)
    sync: CaseSync = field(init=False)
    watches: Watches = field(init=False)
    poller: Poller = field(init=False)
    digests: DigestService = field(init=False)
    schedules: Schedules = field(init=False)
    refresher: CheckRefresher = field(init=False)
    scheduler: ScheduleWorker = field(init=False)
    # What start_workers starts (set by bootstrap: under the replicas' lease on a shared store).
    background: list[Worker] = field(default_factory=list)
    # The background loops running in this process (none until start_workers).
    workers: list[Worker] = field(default_factory=list)

    def warm_up(self) -> None:
        """Pay first-use costs at start, not on the first person's request: templates compiled,
        botocore's paginator model loaded, and the services and severities the Create form lists."""
        render.warm_up()
        self.gateway.client.can_paginate("describe_cases")
        try:
            self.gateway.services()
            self.gateway.severity_levels()
        except BotError as error:
            logger.warning("could not preload AWS Support options: %s", error)

    def recover(self) -> None:
        """Warm up, then finish what a crash interrupted (cases, cards and replies under way)."""
        # Warm first: options and modals must not wait on a cold cache while the backlog resumes.
        self.warm_up()
        resumed = self.cases.recover()
        if resumed:
            logger.info("resuming %d interrupted cases, cards or replies", resumed)

    def start_workers(self) -> None:
        """Start the poller and the digest scheduler beside the web server, as `python -m bot` does."""
        if not self.workers:
            self.workers.extend(self.background)
        for worker in self.workers:
            worker.start()

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()

    def health(self) -> tuple[bool, dict[str, object]]:
        store_ok = self.store.healthy()
        workers = {w.name: dict(w.health(), alive=w.is_alive()) for w in self.workers}
        ok = store_ok and all(w["alive"] for w in workers.values())
        return ok, {"ok": ok, "store": store_ok, "workers": workers, "sandbox": self.settings.sandbox}

    def close(self) -> None:
        self.stop_workers()
        # Let work already acked finish (what does not is resumed from the store at the next start).
        self.work.wait_idle(timeout=5)
        self.cases.stop()  # retries waiting out throttling end now; the next start resumes them
        self.work.wait_idle(timeout=2)
        self.listener_executor.shutdown(wait=False, cancel_futures=True)
        self.work.shutdown()
        self.store.close()
