"""The emulated AWS Support engineer: answers each customer communication once, after a delay.

The replies are content of the emulated AWS side (what an engineer would write), not words of
the bot, which is why they live here and not in templates/.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import zlib

from bot.sandbox import catalog
from bot.sandbox.records import CaseRecord
from bot.sandbox.state import SupportState

logger = logging.getLogger(__name__)

ENGINEERS = ("Priya S.", "Mateo R.", "Hannah K.", "Kenji T.", "Olivia M.", "Samuel A.")
FIRST_REPLIES = (
    'Thank you for contacting AWS Support about "{subject}". I have reviewed the details you provided '
    "for {service} and I'm happy to help.\n\nTo narrow this down, could you please share:\n"
    "1. The affected resource IDs and AWS Region\n"
    "2. The approximate time (with time zone) when you first noticed the issue\n"
    "3. Any error messages or request IDs you received\n\n"
    "In the meantime, please check the AWS Health Dashboard for events that might affect your resources.",
    'Thanks for reaching out regarding "{subject}". I\'ve started looking into this on the {service} side.\n\n'
    "Based on your description, a recent configuration change is the most likely cause. Could you confirm "
    "whether anything was changed shortly before the issue started, and attach any relevant logs?",
)
FOLLOW_UP_REPLIES = (
    'Thank you for the additional information on "{subject}". I\'ve reviewed it with our {service} team.\n\n'
    "The behaviour you describe matches a known configuration pattern. Please try the recommended "
    "settings from the service documentation and let me know whether the issue persists.",
    'Thanks for the update on "{subject}". I was able to reproduce what you are seeing.\n\n'
    "As a next step, please apply the suggested change during a maintenance window and reply to this "
    "case with the outcome. If everything works as expected, you can resolve the case.",
)
SIGNATURE = (
    "\n\nBest regards,\n{engineer}\nAmazon Web Services\n\n"
    "We value your feedback. Please share your experience by rating this correspondence "
    "using the AWS Support Center link at the end of this correspondence."
)


def compose_reply(case: CaseRecord, first: bool) -> str:
    """A short, plausible engineer answer that names the case's subject."""
    pick = zlib.crc32(case.case_id.encode()) + len(case.communications)
    texts = FIRST_REPLIES if first else FOLLOW_UP_REPLIES
    service = catalog.services_by_code().get(case.service_code)
    body = texts[pick % len(texts)].format(subject=case.subject, service=service.name if service else "the service")
    greeting = "Hello,\n\n"
    return greeting + body + SIGNATURE.format(engineer=ENGINEERS[pick % len(ENGINEERS)])


class Engineer:
    """One daemon thread working through a queue of (due time, case, communication)."""

    def __init__(self, state: SupportState, delay_seconds: float | None) -> None:
        self._state = state
        self._delay = delay_seconds
        self._queue: list[tuple[float, int, str, str]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None
        state.add_customer_listener(self.schedule)

    @property
    def delay_seconds(self) -> float | None:
        return self._delay

    @property
    def active(self) -> bool:
        return self._delay is not None and self._delay >= 0

    def set_delay(self, delay_seconds: float | None) -> None:
        """Later communications wait the new delay; waiting ones are (re)queued with it too."""
        with self._wake:
            self._delay = delay_seconds
        self._schedule_unanswered()

    def schedule(self, case_id: str, time_created: str) -> None:
        with self._wake:
            if not self.active or self._stopped:
                return
            due = time.monotonic() + float(self._delay or 0.0)
            heapq.heappush(self._queue, (due, next(self._order), case_id, time_created))
            self._wake.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sandbox-engineer", daemon=True)
        self._thread.start()
        # Communications from a previous run (persisted state) still deserve their answer.
        self._schedule_unanswered()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _schedule_unanswered(self) -> None:
        for case_id, time_created in self._state.unanswered():
            self.schedule(case_id, time_created)

    def _run(self) -> None:
        while True:
            due = self._next_due()
            if due is None:
                return
            _, _, case_id, time_created = due
            if not self.active:
                continue
            try:
                self._state.answer(case_id, time_created, compose_reply)
            except Exception:  # the thread's boundary: one bad reply must not silence the engineer
                logger.exception("sandbox engineer could not answer %s", case_id)

    def _next_due(self) -> tuple[float, int, str, str] | None:
        with self._wake:
            while not self._stopped:
                if not self._queue:
                    self._wake.wait()
                    continue
                wait = self._queue[0][0] - time.monotonic()
                if wait <= 0:
                    return heapq.heappop(self._queue)
                self._wake.wait(wait)
            return None
