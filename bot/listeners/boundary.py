"""The one error boundary of the listeners: a known failure (BotError) becomes its message, an
unexpected one a short "something went wrong on our side" and one logged traceback; the person
always hears back, where they asked, and never sees the exception's text.

Two places run listener code: the request thread, before Bolt answers (errors reach
`unexpected_in_listener`, wired as `app.error`), and the pools after it (`guarded` wraps each job)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltRequest, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import render
from bot.ack_first import served_first
from bot.errors import BotError, StateUnavailable

logger = logging.getLogger(__name__)

SLACK_LAST_RETRY = 3  # Slack delivers an event at most three times again (X-Slack-Retry-Num 1-3)

Answer = Callable[[str], None]  # tells the person a text, wherever the surface answers


def guarded(name: str, answer: Answer, work: Callable[[], object], *, noted: bool = False) -> Callable[[], None]:
    """`work` as a job for after the ack: failures are answered through `answer`, the unknown logged.
    Made while the request is answered, it runs only once the store confirmed that the request was
    served here first (bot.ack_first): a replay that another replica served does nothing here.
    `noted`: this process noted the work in the journal before the ack, under a key Slack gives once
    per action, which makes it once-only already; it runs unconfirmed, as a replica that holds the
    record must send it even when a replay sent elsewhere won the request's claim."""
    confirmed = (lambda: True) if noted else served_first()

    def run() -> None:
        try:
            if not confirmed():
                logger.warning("%s not run: another replica served this request (a replay)", name)
                return
            work()
        except BotError as error:
            answer(render.error_text(error))
        except StateUnavailable as error:  # the database away or the disk full: /healthz says so too
            logger.warning("%s failed: %s", name, error)
            answer(render.text("store_not_writable"))
        except Exception:  # the after-ack boundary: one traceback, one plain answer
            logger.exception("%s failed", name)
            answer(render.text("unexpected_error"))

    return run


def promptly(name: str, body: dict[str, Any], context: Any, client: WebClient, work: Callable[[], object]) -> None:
    """`work` started at once after the ack on the prompt pool (a modal to open or redraw: a trigger_id
    does not wait for a lull), its failure answered where the person acted."""
    answer = guarded(name, lambda text: _answer_later(context, client, body, text), work)
    on_prompt_pool(context["services"], answer, name)


def on_prompt_pool(services: Any, job: Callable[[], None], name: str) -> None:
    """Starts `job` on the prompt pool. Never raises: this runs before Bolt answers, and in the
    error handler itself."""
    try:
        services.prompt_work.submit(job)
    except RuntimeError:  # the pool is shut down: the bot is stopping, after its server
        logger.warning("%s not done: the bot is stopping", name)


def _json(body: dict[str, Any]) -> BoltResponse:
    return BoltResponse(status=200, body=json.dumps(body), headers={"content-type": "application/json"})


def unexpected_in_listener(
    error: Exception,
    body: dict[str, Any],
    context: Any,
    client: WebClient,
    response: BoltResponse | None,
    request: BoltRequest | None = None,
) -> BoltResponse | None:
    """Bolt's listener error handler: a listener raised before Bolt answered. Before its ack, the
    answer goes where the surface reads one (a form's field, a command's ephemeral text), else by
    response_url or privately after Bolt's answer; after its ack, the ack stands and the failure is
    told after it."""
    if isinstance(error, BotError):
        text = str(render.error_text(error))
    elif isinstance(error, StateUnavailable):
        logger.warning("listener failed on %s: %s", body.get("type") or "a command", error)
        text = str(render.text("store_not_writable"))
    else:
        logger.error("listener failed on %s", body.get("type") or "a command", exc_info=error)
        text = str(render.text("unexpected_error"))
    kind = body.get("type")
    acked = _acked(context)
    if response is None or acked is not None:
        # Bolt would answer this failure in the ack's place: a modal the ack closed would open again
        # with "try again" on a form already noted. What the ack said stands.
        _answer_after_response(context, client, body, text, privately=kind == "view_submission")
        return acked
    if kind == "view_submission":
        # The modal stays open with what was typed; the answer sits on its first field.
        blocks = list(((body.get("view") or {}).get("state") or {}).get("values") or {})
        if blocks:
            return _json({"response_action": "errors", "errors": {blocks[0]: text}})
        _answer_after_response(context, client, body, text, privately=True)
        return BoltResponse(status=200, body="")
    if kind == "block_suggestion":
        return _json({"options": []})
    if kind is None and body.get("command"):
        return _json({"response_type": "ephemeral", "text": text})
    if kind == "event_callback":
        if isinstance(error, StateUnavailable):
            if _delivery_number(request) < SLACK_LAST_RETRY:
                # The store could not note it, and nothing else keeps it: Slack delivers it again (three
                # times, over minutes), and the event's keys make a redelivery after a note harmless.
                return BoltResponse(status=503, body="")
            # Slack's last try: what was written is lost unless its author hears it was not sent.
            _tell_author_of_message(context, client, body)
        return BoltResponse(status=200, body="")  # a redelivery would only fail the same way
    _answer_after_response(context, client, body, text)
    return BoltResponse(status=200, body="")


def _answer_after_response(
    context: Any, client: WebClient, body: dict[str, Any], text: str, *, privately: bool = False
) -> None:
    """The answer is a Web API call: made on the prompt pool, so Bolt's own answer does not wait for it."""

    def answer() -> None:
        if privately:
            _tell_privately(client, body, text)
        else:
            _answer_later(context, client, body, text)

    _after_response(context, answer, f"the answer to a failed {body.get('type') or 'command'}")


def _after_response(context: Any, job: Callable[[], None], name: str) -> None:
    """`job` on the prompt pool; here and now when a middleware before ours failed (no pool to hand it to)."""
    services = context.get("services") if context is not None else None
    if services is None:
        job()
        return
    on_prompt_pool(services, job, name)


def _delivery_number(request: BoltRequest | None) -> int:
    """0 for an event's first delivery, then Slack's X-Slack-Retry-Num (1 to 3)."""
    values = (request.headers.get("x-slack-retry-num") if request is not None else None) or ["0"]
    try:
        return int(values[0])
    except ValueError:
        return 0


def _tell_author_of_message(context: Any, client: WebClient, body: dict[str, Any]) -> None:
    """Privately, in the thread: the message the store could not keep did not reach AWS."""
    event = body.get("event") or {}
    channel, user = event.get("channel"), event.get("user")
    if not channel or not user:
        return

    def tell() -> None:
        try:
            client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=event.get("thread_ts"), text=render.text("reply_not_kept")
            )
        except SlackApiError as exc:
            logger.warning("could not tell %s of a reply not kept: %s", user, exc.response.get("error"))

    _after_response(context, tell, "telling of a reply not kept")


def _acked(context: Any) -> BoltResponse | None:
    """The listener's ack, when it had given one before failing."""
    ack = context.get("ack") if context is not None else None
    return getattr(ack, "response", None)


def _answer_later(context: Any, client: WebClient, body: dict[str, Any], text: str) -> None:
    respond = context.get("respond") if context is not None else None
    if respond is None:
        _tell_privately(client, body, text)
        return
    try:
        respond(response_type="ephemeral", replace_original=False, text=text)
    except Exception:  # noqa: BLE001 - the answer itself failing: logged, nothing more to do
        logger.warning("could not answer a failed %s", body.get("type") or "command", exc_info=True)


def _tell_privately(client: WebClient, body: dict[str, Any], text: str) -> None:
    """No response_url (a button in a modal): the person hears it from the bot directly."""
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    if not user:
        return
    try:
        client.chat_postMessage(channel=user, text=text)
    except SlackApiError as exc:
        logger.warning("could not tell %s of a failure: %s", user, exc.response.get("error"))
