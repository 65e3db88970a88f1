"""Live updates: AWS Support's EventBridge events, read from an SQS queue (issue 12).

`envelope` turns an SQS message body into a `CaseEvent` (or says why it is ignored), `consumer`
long-polls the queue and hands each event to a handler that answers `Outcome.DONE` or
`Outcome.retry_later(...)`, and `watch` notices when polls keep finding what events should have
brought. The handler is the sync path's: this package decides nothing about cases.
"""

from bot.events.envelope import CaseEvent, Ignored, parse_message
from bot.events.outcome import EventHandler, Outcome
from bot.events.watch import PipelineWatch

__all__ = ["CaseEvent", "EventHandler", "Ignored", "Outcome", "PipelineWatch", "parse_message"]
