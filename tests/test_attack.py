"""Attacks on the hardened bot (helper "attack"): each test fails on the code it was written against.

Marked xfail(strict=True) so the branch stays green; whoever fixes one removes its mark.
"""

from __future__ import annotations

import pytest

from tests.cases.test_modal import open_modal, values


def cards(bot):
    return bot.slack.calls("chat.postMessage", lambda c: c.params.get("blocks") is not None)


@pytest.mark.xfail(strict=True, reason="attack: CreateCase reconciliation in the gateway matches by subject+service")
def test_a_second_form_with_the_same_subject_hit_by_a_5xx_opens_its_own_case(bot):
    # Two people, two forms, same subject (a common one). The second CreateCase gets a 5xx that AWS
    # answered *without* opening anything; the gateway's own reconciliation (gateway.py create_case)
    # then takes the FIRST person's case for it: no case for the second form, its card and
    # stewardship go to someone else's case.
    bot.slack.add_user("U2", real_name="Bo", display_name="bo")
    bot.command("create Disk full")
    bot.command("create Disk full", user="U2")
    first, second = (c.response["view"] for c in bot.slack.wait_for("views.open", count=2))
    bot.requests.view_submission(first, values=values(subject="Disk full"))
    bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None, timeout=15)
    bot.services.work.wait_idle(timeout=10)
    bot.sandbox.inject_fault("CreateCase", "InternalServerError", count=1)
    bot.requests.view_submission(second, values=values(subject="Disk full", description="Another volume."), user_id="U2")
    bot.services.work.wait_idle(timeout=20)
    bodies = sorted(
        c.body.split("\n")[0] for case in bot.services.gateway.list_cases() for c in bot.services.gateway.communications(case.case_id)[:1]
    )
    assert bodies == ["Another volume.", "The volume is at 100%."]


@pytest.mark.xfail(strict=True, reason="attack: a 5xx on CreateCase hands someone else's case (and its stewardship) over")
def test_a_5xx_on_create_never_makes_the_submitter_steward_of_anothers_case(bot):
    bot.slack.add_user("U2", real_name="Bo", display_name="bo")
    bot.command("create Disk full")
    bot.command("create Disk full", user="U2")
    first, second = (c.response["view"] for c in bot.slack.wait_for("views.open", count=2))
    bot.requests.view_submission(first, values=values(subject="Disk full"))
    bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None, timeout=15)
    bot.services.work.wait_idle(timeout=10)
    [case] = bot.services.gateway.list_cases()
    bot.sandbox.inject_fault("CreateCase", "InternalServerError", count=1)
    bot.requests.view_submission(second, values=values(subject="Disk full", description="Another volume."), user_id="U2")
    bot.services.work.wait_idle(timeout=20)
    assert bot.services.cases.record(case.case_id).steward == "U1"


@pytest.mark.xfail(strict=True, reason="attack: a second process on one BOT_DB_PATH is not refused (CONTRACT line 8)")
def test_a_second_process_on_the_same_sqlite_file_is_refused_at_start(bot_factory, fake_slack, sandbox):
    # Not refused, it runs a second poller, and its start-up recovery (Journal sole_owner=True,
    # bootstrap.py:61) takes the FIRST process's live leases as a dead one's: a reply in flight is sent twice.
    from tests.support.http import request
    from tests.sync.test_crash import kill, start_bot, wait_until

    setup = bot_factory()
    db_path = setup.db_path
    setup.stop()
    first, url = start_bot(db_path, fake_slack, sandbox)
    second = None
    try:
        wait_until(lambda: _ready(request, url), what="the first bot")
        second, _ = start_bot(db_path, fake_slack, sandbox)
        try:
            code = second.wait(timeout=20)
        except Exception:  # noqa: BLE001 - still running after 20 s: not refused
            code = None
        assert code == 2
    finally:
        kill(first)
        if second is not None and second.poll() is None:
            kill(second)


def _ready(request, url: str) -> bool:
    try:
        return request("GET", url + "/healthz").status == 200
    except OSError:
        return False
