"""Review 30 of 055be21: wake() now runs SyncStates.change, an atomic Table.update, even for a case that
has no sync state. Both backends' update write what `change` returns, and change returns the old value
(None) when there is nothing to change: a JSON null row in `sync` for every case replied to that no
thread follows. Before 055be21 wake() read the state and wrote nothing. SyncStates.all() skips null
rows, so the sweep of unfollowed cases (_forget_unfollowed) never deletes them: they stay for ever."""

from __future__ import annotations

import pytest

from tests.sync.helpers import open_case


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_reply_to_a_case_no_thread_follows_leaves_no_row_in_the_sync_table(bot_factory, request, backend):
    env = {"DATABASE_URL": request.getfixturevalue("pg_url")} if backend == "postgres" else {}
    bot = bot_factory(env=env)
    case = open_case(bot)  # not linked anywhere
    bot.command(f"reply {case.display_id} any news?")
    assert bot.services.work.wait_idle(timeout=20)
    assert any("any news?" in c.body for c in bot.services.gateway.communications(case.case_id))

    bot.services.sync.run_cycle()  # the sweep of unfollowed cases
    rows = dict(bot.services.store.table("sync").items())
    assert case.case_id not in rows, f"left in the sync table: {case.case_id} -> {rows[case.case_id]!r}"
