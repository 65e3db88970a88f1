"""What a handler answers for one event: the consumer's only input for deleting or keeping a message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from bot.events.envelope import CaseEvent


@dataclass(frozen=True)
class Outcome:
    """`DONE`: what the event caused is recorded, the message may go. `retry_later`: keep it; it comes
    back after a backoff (and, after the queue's maxReceiveCount, goes to the dead-letter queue)."""

    done: bool
    reason: str = ""

    DONE: ClassVar[Outcome]

    @classmethod
    def retry_later(cls, reason: str) -> Outcome:
        return cls(done=False, reason=reason)


Outcome.DONE = Outcome(done=True)


class EventHandler(Protocol):
    """The sync path's side of the seam. It must be idempotent: a message can arrive twice (SQS is
    at-least-once, and a kill -9 between DONE and the delete redelivers it)."""

    def __call__(self, event: CaseEvent) -> Outcome: ...
