"""The bot's parts, built once per process by bootstrap.py and handed to listeners through Bolt's context."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from slack_sdk import WebClient

from bot import render
from bot.accounts.config import Account
from bot.accounts.directory import AccountDirectory
from bot.accounts.routing import AccountGateways, check_ref_syntax, parse_account_ref
from bot.aws.gateway import SupportGateway, parse_case_ref
from bot.cases.search_pages import SearchPages
from bot.cases.service import CaseService
from bot.config import Settings
from bot.digest.refresh import CheckRefresher
from bot.digest.schedule import Schedules
from bot.digest.service import DigestService
from bot.digest.worker import ScheduleWorker
from bot.domain import Case
from bot.errors import BotError
from bot.pool import ThreadPool, map_in_callers_context
from bot.store.backend import Store
from bot.sync.cycle import CaseSync
from bot.sync.poller import Poller
from bot.sync.watch import Watches
from bot.work import OrderedWork

logger = logging.getLogger(__name__)

PROMPT_WORK_WAIT_SECONDS = 3.0  # at closing, for the prompt pool (see Services.close)


class Worker(Protocol):
    """A background loop in the bot's process (poller, digest scheduler)."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def is_alive(self) -> bool: ...

    def health(self) -> dict[str, object]: ...


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
    # The accounts served and a gateway per account (alias -> gateway); `gateway` routes among them.
    accounts: AccountDirectory
    gateways: dict[str, SupportGateway]
    # After-ack Slack work a person is watching for: opening or redrawing a modal (a trigger_id
    # lives 3 s), answering a listener that failed. Started at once, never held for a lull as `work` is.
    prompt_work: ThreadPool = field(default_factory=lambda: ThreadPool(max_workers=32, name="prompt"))
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
    # Writes that must reach the store before it closes, whatever the after-ack pool still holds.
    last_writes: list[Callable[[], None]] = field(default_factory=list)

    # Several accounts ------------------------------------------------------------------

    @property
    def routing(self) -> AccountGateways | None:
        """The gateway per account behind `gateway` when the bot serves several; None with one."""
        return self.gateway if isinstance(self.gateway, AccountGateways) else None

    @functools.cached_property
    def search_pages(self) -> SearchPages:
        """The kept results of `search`, for its Next pages; one per process (it paces its pruning)."""
        return SearchPages(self.store)

    def case_id_for(self, channel: str, ref: str) -> str:
        """The case `ref` names as `channel` may see it (AWS is asked with several accounts: after the ack).

        With one account the reference goes on as it is (see `plain_ref`).
        """
        if self.routing is None:
            return self.plain_ref(ref)
        return self.routing.find_case(ref, channel).case_id

    def plain_ref(self, ref: str) -> str:
        """With one account, `<alias>:<display ID>` names it too (as `default:<display ID>`): its display
        ID, once the alias is checked. With several, the reference as given: the router reads the alias."""
        named = parse_account_ref(ref) if self.routing is None else None
        if named is None:
            return ref
        self.accounts.require(named[0])
        return named[1]

    def check_ref(self, channel: str, ref: str) -> None:
        """Before the ack, without AWS: a well-formed reference to a case of an account usable here."""
        if self.routing is None:
            parse_case_ref(self.plain_ref(ref))
            return
        check_ref_syntax(ref)
        named = parse_account_ref(ref)
        account = self.accounts.require(named[0]) if named else None
        if account is None and ref.strip().startswith("case-"):
            account = self.routing.account_of(ref.strip())
        if account is not None:
            self.accounts.check_usable(channel, account)

    def visible_in(self, channel: str, case: Case) -> bool:
        """Whether a case's content may be shown in `channel` (its account allowed there)."""
        if self.routing is None:
            return True
        return self.routing.account_of(case.case_id).allowed_in(channel)

    def kept_visible_in(self, channel: str, case: Case) -> bool:
        """`visible_in` for a case kept from an earlier answer (search's pages): it must also still be in
        the account it was found in, since an ID naming an account no longer served reads as the default's."""
        if self.routing is None:
            return True
        account = self.routing.account_of(case.case_id)
        if case.account_id:
            same = self.accounts.account_id(account) == case.account_id
        else:
            same = not case.account or case.account == account.alias
        return same and account.allowed_in(channel)

    def account_rows(self, channel: str) -> list[dict[str, object]]:
        """For `accounts`: each account's alias, ID, whether AWS Support answers there now, its channels."""
        default = self.accounts.default_for(channel)

        def row(account: Account) -> dict[str, object]:
            problem = self._probe(account)
            return {
                "alias": account.alias,
                "id": self.accounts.account_id(account),
                "reachable": not problem,
                "problem": problem or "",
                "channels": sorted(account.channels) if account.channels is not None else None,
                "here": account.allowed_in(channel),
                "default": default is not None and default.alias == account.alias,
            }

        with ThreadPoolExecutor(max_workers=min(4, len(self.accounts))) as pool:
            return map_in_callers_context(pool, row, self.accounts)

    def _probe(self, account: Account) -> str:
        """The AWS code that says why the account cannot be used now; empty when AWS Support answers."""
        if self.routing is not None:
            found = self.routing.probe(account)
            return found.code if found is not None else ""
        try:
            self.gateway.severity_levels()
        except BotError as error:
            return getattr(error, "code", "") or error.key
        return ""

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

    def unlink_channels_taken_off_accounts(self) -> None:
        """The accounts file changed since a case was linked: a channel it no longer lets use the case's
        account gets none of the case's content, and its thread's replies no longer reach the case."""
        routing = self.routing
        if routing is None:
            return
        for link in self.cases.drop_links_off_accounts(
            lambda link: routing.account_of(link.case_id).allowed_in(link.channel),
            lambda case_id: routing.account_of(case_id).alias,
        ):
            logger.warning(
                "case %s unlinked from channel %s: the accounts file no longer lets that channel use account %s",
                link.case_id,
                link.channel,
                routing.account_of(link.case_id).alias,
            )

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
        body: dict[str, object] = {"ok": ok, "store": store_ok, "workers": workers, "sandbox": self.settings.sandbox}
        if self.routing is not None:
            # An account that cannot be reached is reported, not fatal: the others are served.
            body["accounts"] = {
                account.alias: {"id": account.id, "problem": problem.code if problem else ""}
                for account in self.accounts
                for problem in [self.routing.problems().get(account.alias)]
            }
        return ok, body

    def close(self) -> None:
        closing_since = time.monotonic()
        self.stop_workers()
        # Let work already acked finish (what does not is resumed from the store at the next start).
        self.work.wait_idle(timeout=5)
        self.cases.stop()  # retries waiting out throttling end now; the next start resumes them
        self.work.wait_idle(timeout=2)
        # A modal to open, an answer to a failure: quick Web API calls, and a trigger_id dies in 3 s.
        # They had the waits above to finish in: what is left of 3 s from the start of closing, so
        # closing is no longer than before (a container's stop gives 10 s). What still waits after
        # that is dropped, not left to find the store closed.
        left = max(0.0, closing_since + PROMPT_WORK_WAIT_SECONDS - time.monotonic())
        self.prompt_work.shutdown(wait=True, timeout=left)
        self.prompt_work.shutdown(wait=False, cancel_futures=True)
        self.work.shutdown()
        for write in self.last_writes:
            try:
                write()
            except Exception:  # noqa: BLE001 - closing goes on; the next start reads what was written
                logger.warning("a last write before closing the store failed", exc_info=True)
        self.store.close()
