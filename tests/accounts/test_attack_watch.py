"""Watches per (channel, account) under attack (adversarial review of issue #11's follow-ups): a change
of what a channel watches loses no case it already watched. End to end: real Bolt over HTTP, fake
Slack, the accounts sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.sync.state import aws_time
from tests.accounts.test_watch_across_accounts import carded, open_in, run_cycles, watching


def began_an_hour_ago(bot, channel):
    """The channel's watches began an hour ago (the poller has not carded what arrived since)."""
    table = bot.services.store.table("watches")
    hour_ago = aws_time(datetime.now(UTC) - timedelta(hours=1))
    record = table.get(channel)
    accounts = {alias: {**entry, "since": hour_ago} for alias, entry in record["accounts"].items()}
    table.put(channel, {**record, "accounts": accounts})


def test_narrowing_one_account_of_a_watch_of_every_account_loses_none_of_its_cases_not_yet_carded(accounts_bot):
    watching(accounts_bot)  # every account C1 may use
    began_an_hour_ago(accounts_bot, "C1")
    open_in(accounts_bot, "stage", "Stage high case before the change", "high")
    # Before the poller's next cycle, an admin narrows stage to high cases: the case above is high.
    answer = watching(accounts_bot, "high stage")
    assert "*stage*" in answer["text"]
    run_cycles(accounts_bot)
    assert "Stage high case before the change" in carded(accounts_bot, "C1")


def test_widening_to_every_account_loses_none_of_the_watched_accounts_cases_not_yet_carded(accounts_bot):
    watching(accounts_bot, "all stage")
    began_an_hour_ago(accounts_bot, "C1")
    open_in(accounts_bot, "stage", "Stage case before the change", "low")
    watching(accounts_bot, "all all")  # now every account C1 may use
    run_cycles(accounts_bot)
    assert "Stage case before the change" in carded(accounts_bot, "C1")


class _ReplicaActsBetween:
    """The store as one replica sees it, while another replica acts right after its next write to the
    watches table (two admins in one channel, on two replicas)."""

    def __init__(self, store, other_replica):
        self._store, self._other = store, other_replica

    def table(self, name):
        table = self._store.table(name)
        return _TableThen(table, self) if name == "watches" else table

    def __getattr__(self, name):
        return getattr(self._store, name)


class _TableThen:
    def __init__(self, table, owner):
        self._table, self._owner = table, owner

    def update(self, *args, **kwargs):
        value = self._table.update(*args, **kwargs)
        other, self._owner._other = self._owner._other, None
        if other is not None:
            other()
        return value

    def __getattr__(self, name):
        return getattr(self._table, name)


def test_unwatch_of_an_accounts_last_watch_never_deletes_a_watch_another_admin_adds_meanwhile(accounts_bot):
    from tests.support.harness import ADMIN

    watching(accounts_bot, "all stage")
    watches = accounts_bot.services.watches
    store = watches.store
    watches.store = _ReplicaActsBetween(store, lambda: watches.watch("C1", ADMIN, "high", "main"))
    try:
        watches.unwatch("C1", ADMIN, "stage")
    finally:
        watches.store = store
    [watch] = watches.all()
    assert watch.entry("main") and watch.entry("main")["level"] == "high"  # the other admin's watch stands
    assert watch.entry("stage") is None
