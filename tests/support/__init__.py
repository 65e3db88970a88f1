"""The end-to-end harness: drive the real bot over HTTP the way Slack does, with nothing patched.

What runs in a test (fixtures in tests/conftest.py):

* ``sandbox`` -- ``bot.sandbox.SandboxServer(reply_delay_seconds=-1)``: AWS Support over real HTTP,
  spoken to by the bot's own boto3 client. Its engineer is off: make AWS answer a case with
  ``sandbox.add_aws_reply(case_id, body)``; break it with ``sandbox.inject_fault(op, code, count)``;
  ``sandbox.calls`` is a Counter of the operations it served.
* ``fake_slack`` -- :class:`tests.support.fake_slack.FakeSlack`, the Slack Web API on 127.0.0.1.
  It records every call (``calls(method)``, ``wait_for(method, predicate, count, timeout)``,
  ``clear()``), keeps channels and threads (``messages(channel, thread_ts)``, ``message(ch, ts)``),
  views (``view(id)``, ``views()``), ephemerals, files; it serves response URLs
  (``response_url()``; posts are recorded as method ``"response_url"``), private file downloads
  (``add_file(name, data, mimetype)``; recorded as ``"file_download"``) and v2 uploads
  (``"file_upload"``). Faults: ``fail(method, error="ratelimited", status=None, retry_after=1,
  count=1)``, ``drop_after_acting(method, count=1)`` (Slack acts, then the connection drops
  unanswered) and ``set_latency(seconds, method=None)``. The bot is ``UBOT``/``BBOT`` in team
  ``T0FAKE``; any other user ID is a person (``add_user`` to give one a name).
* ``bot`` -- :class:`tests.support.harness.BotHarness`: the bot built exactly as ``python -m bot``
  builds it (``load_settings`` -> ``bot.bootstrap.build_services`` with the sandbox gateway -> ``build_app`` ->
  waitress on a free port), with its DB in ``tmp_path``, admin ``UADMIN``, poll interval 1 s and
  the background workers NOT started (call the poller yourself, or ``bot.start_workers()``, or use
  ``bot_with_workers``). ``bot_factory(workers=False, env=None, db_path=None)`` makes more (a
  restart on the same DB, other settings). Everything is stopped at teardown.

On a ``BotHarness``: ``.url``, ``.services``, ``.settings``, ``.sandbox``, ``.slack`` (the
FakeSlack), ``.requests`` (a :class:`tests.support.slack_requests.SlackRequests` signed with the
bot's secret: ``slash_command``, ``block_actions``, ``view_submission``, ``view_closed``,
``block_suggestion``, ``event_callback``, each taking ``signing="valid"|"unsigned"|"wrong"|"stale"``),
and shortcuts: ``command(text, user="U1", channel="C1")`` -> HttpResponse (``.status``,
``.headers``, ``.body``; each command gets a fresh response URL), ``wait_for_response(timeout=10,
response_url=None, count=1)`` -> the JSON the bot posted there, ``user_message(channel, text,
user="U1", thread_ts=None, files=None)`` -> Delivery (event, event_id, response),
``redeliver(delivery, retry_num=1)``, ``health()``, ``get(path)``.

Never ``time.sleep`` to wait for the bot: wait for what it does (``fake_slack.wait_for``,
``bot.wait_for_response``). To prove that something did NOT happen, wait for a later thing the
bot does after it, or ``fake_slack.assert_no_calls(within=0.3, method=...)``.

Example -- a slash command that opens a modal, and its submission::

    def test_create_opens_the_modal(bot):
        response = bot.command("create Disk is full")
        assert response.status == 200

        [call] = bot.slack.wait_for("views.open")
        view = call.response["view"]          # as Slack stored it: id, hash, blocks...
        assert call.headers["Authorization"] == "Bearer xoxb-test-token"

        answer = bot.requests.view_submission(view, values={...})   # state.values, as Slack sends
        assert answer.status == 200
        [post] = bot.slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == "C1")
        assert bot.sandbox.calls["CreateCase"] == 1

And a person replying in a linked thread, then Slack redelivering the same event::

    delivery = bot.user_message("C1", "any update?", thread_ts=card_ts)
    bot.slack.wait_for("reactions.add", lambda c: c.params["timestamp"] == delivery.event["ts"])
    bot.redeliver(delivery, retry_num=1)
"""
