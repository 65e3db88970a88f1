"""Review 37 of c9995b0: a kill -9 between the provisional save (next_check_at -1) and its settle leaves the
case due. It must be described once more, then rest again: not every cycle."""

from __future__ import annotations

import time

from bot.sync.poster import ChannelPacer
from tests.sync.helpers import open_case, times_described


def test_a_provisional_recheck_left_by_a_crash_is_described_once_then_rests(bot_factory, pg_url, fake_slack):
    bot = bot_factory(env={"DATABASE_URL": pg_url})
    fake_slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    bot.services.sync.poster.pacer = ChannelPacer(per_second=100, burst=100)
    case = open_case(bot)
    bot.services.gateway.resolve_case(case.case_id)
    bot.services.cases.post_card(bot.services.gateway.get_case(case.case_id), "C1", linked_by="U1")
    sync = bot.services.sync
    sync.run_cycle()
    assert sync.state(case.case_id).next_check_at > time.time()  # resting

    row = bot.services.store.table("sync").get(case.case_id)
    bot.services.store.table("sync").put(case.case_id, {**row, "next_check_at": -1.0})  # the crash

    asked = times_described(bot, case, 4)
    assert asked == 1, asked
    assert sync.state(case.case_id).next_check_at > time.time()
