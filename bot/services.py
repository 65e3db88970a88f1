"""The bot's parts, built once per process and handed to listeners through Bolt's context."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from slack_sdk import WebClient

from bot.aws.gateway import SupportGateway
from bot.config import Settings
from bot.slack.client import slack_client  # noqa: F401 - the old import path of the one factory
from bot.store.tables import Store
from bot.work import OrderedWork

logger = logging.getLogger(__name__)


class Worker(Protocol):
    """A background loop in the bot's process (poller, digest scheduler)."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def is_alive(self) -> bool: ...

    def health(self) -> dict[str, Any]: ...


@dataclass
class Services:
    settings: Settings
    store: Store
    gateway: SupportGateway
    slack: WebClient
    workers: list[Worker] = field(default_factory=list)
    # Bolt runs listeners here; they only parse, ack and hand the slow part to `work`.
    listener_executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=32, thread_name_prefix="listener")
    )
    work: OrderedWork = field(default_factory=lambda: OrderedWork(max_workers=64))
    bot_user_id: str = ""
    _parts: dict[str, Any] = field(default_factory=dict)
    _parts_lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def cases(self):  # -> bot.cases.CaseService
        return self._part("cases", "bot.cases.service", "from_services")

    @property
    def sync(self):  # -> bot.sync.CaseSync
        return self._part("sync", "bot.sync.cycle", "CaseSync")

    @property
    def digests(self):  # -> bot.digest.DigestService
        return self._part("digests", "bot.digest.service", "DigestService")

    @property
    def schedules(self):  # -> bot.schedule.DigestScheduler
        return self._part("schedules", "bot.digest.schedule", "DigestScheduler")

    def _part(self, name: str, module: str, cls: str) -> Any:
        # Built once: each part keeps in-process state (in-flight sets, per-case locks, caches).
        with self._parts_lock:
            if name not in self._parts:
                import importlib

                self._parts[name] = getattr(importlib.import_module(module), cls)(self)
            return self._parts[name]

    def warm_up(self) -> None:
        """Pay first-use costs at start, not on the first person's request: templates compiled,
        botocore's paginator model loaded, and the services and severities the Create form lists."""
        from bot import render
        from bot.errors import BotError

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
        for worker in self.workers:
            worker.start()

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()

    def health(self) -> tuple[bool, dict[str, Any]]:
        store_ok = self.store.healthy()
        workers = {w.name: dict(w.health(), alive=w.is_alive()) for w in self.workers}
        ok = store_ok and all(w["alive"] for w in workers.values())
        return ok, {"ok": ok, "store": store_ok, "workers": workers, "sandbox": self.settings.sandbox}

    def close(self) -> None:
        self.stop_workers()
        # Let work already acked finish (what does not is resumed from the store at the next start).
        self.work.wait_idle(timeout=5)
        cases = self._parts.get("cases")
        if cases is not None:
            cases.stop()  # retries waiting out throttling end now; the next start resumes them
            self.work.wait_idle(timeout=2)
        self.listener_executor.shutdown(wait=False, cancel_futures=True)
        self.work.shutdown()
        self.store.close()
