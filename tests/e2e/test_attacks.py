"""Found by attacking the hardened bot: a form adopting another person's case after a 5xx, a second
process on one BOT_DB_PATH, a record whose last write failed held forever. Each failed before its fix."""

from __future__ import annotations

from tests.cases.test_modal import values


def cards(bot):
    return bot.slack.calls("chat.postMessage", lambda c: c.params.get("blocks") is not None)


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
    bot.requests.view_submission(
        second, values=values(subject="Disk full", description="Another volume."), user_id="U2"
    )
    bot.services.work.wait_idle(timeout=20)
    bodies = sorted(
        c.body.split("\n")[0]
        for case in bot.services.gateway.list_cases()
        for c in bot.services.gateway.communications(case.case_id)[:1]
    )
    assert bodies == ["Another volume.", "The volume is at 100%."]


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
    bot.requests.view_submission(
        second, values=values(subject="Disk full", description="Another volume."), user_id="U2"
    )
    bot.services.work.wait_idle(timeout=20)
    assert bot.services.cases.record(case.case_id).steward == "U1"


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


class _FlakyTable:
    """A journal table whose updates fail while `failing` is set (the database went away, the disk filled)."""

    def __init__(self, table) -> None:
        self.table = table
        self.failing = False

    def __getattr__(self, name):
        return getattr(self.table, name)

    def update(self, key, change):
        from bot.store.backend import StoreError

        if self.failing:
            raise StoreError("connection lost")
        return self.table.update(key, change)


def test_a_record_whose_failure_could_not_be_written_is_resumed_once_the_store_is_back(tmp_path):
    # work.py _end: "the record stays pending, resumed later" -- but Journal._end raised before _drop,
    # so the key stays in Journal._held; the keeper's renew_held() renews its lease every tick and
    # resumable() skips held keys: no worker, of this process or another, ever takes it again.
    from bot.errors import BotError
    from bot.store.journal import Journal
    from bot.store.tables import Store
    from bot.work import JournalWork, OrderedWork, RetryPolicy

    class Clock:
        now = 1_000_000.0

        def __call__(self):
            return self.now

    store, clock = Store(str(tmp_path / "work.sqlite")), Clock()
    flaky = _FlakyTable(store.table("journal"))
    journal = Journal(flaky, lease_seconds=60, clock=clock)
    work = OrderedWork(max_workers=2)
    runner = JournalWork(journal, work, is_retryable=lambda e: False, retry=RetryPolicy(deadline_seconds=0.2))

    class Handler:
        runs = 0

        def run(self, job):
            Handler.runs += 1
            if Handler.runs == 1:
                flaky.failing = True  # the store goes away just as the work ends
                raise BotError("aws_error")
            return {}

        def failed(self, job, error):
            pass

    runner.handle("reply", Handler())
    try:
        runner.submit(journal.record("k", "reply", "t", {}))
        assert work.wait_idle(timeout=10)
        flaky.failing = False  # the store is back
        for _ in range(5):  # the keeper ticks on, minutes pass
            clock.now += 30
            journal.renew_held()
            runner.resume()
            assert work.wait_idle(timeout=10)
        other = Journal(store.table("journal"), lease_seconds=60, clock=clock)  # another replica
        assert journal.get("k").state != "pending" or other.take("k") is not None
    finally:
        runner.stop()
        work.shutdown()
        store.close()
