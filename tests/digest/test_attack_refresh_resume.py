"""Refresh checks resumed after its follow-up was already posted (adversarial review of 1b0cd1b).

A replica dies after recording the followed refresh but before its journal record ends. Another
replica's worker looks at that refresh (Trusted Advisor was quick), then takes the dead replica's
record when its lease runs out and runs it again from its saved progress: the follow-up is posted
once, not once before the rerun and again after it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.digest.refresh import REFRESH_KIND
from bot.store.journal import PENDING
from tests.digest.test_e2e import follow_ups, start_refresh


def test_a_click_resumed_after_its_follow_up_was_posted_does_not_post_it_again(bot: Any) -> None:
    message, pending = start_refresh(bot)
    journal = bot.services.refresher.journal
    [key] = [k for k in list(journal.table.keys()) if k.startswith("refresh:")]
    assert journal.get(key).kind == REFRESH_KIND
    # The record as it stood when its replica died: progress saved, the follow-up recorded, not ended,
    # and its lease run out.
    journal.table.put(key, dict(journal.table.get(key), state=PENDING, holder="", lease_until=0.0, outcome={}))

    bot.sandbox.advance_clock(10)  # Trusted Advisor is done
    worker = bot.services.scheduler
    worker.run_once(pending.next_poll_at + timedelta(seconds=1))  # before the dead replica's lease ran out

    assert bot.services.refresher.runner.resume() == 1
    assert bot.services.work.wait_idle(timeout=30)
    worker.run_once(pending.next_poll_at + timedelta(minutes=1))
    worker.run_once(pending.next_poll_at + timedelta(minutes=2))

    assert len(follow_ups(bot, message)) == 1
    assert bot.services.refresher.pending_refreshes() == []
