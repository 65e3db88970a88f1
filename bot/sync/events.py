"""What a Support Case Update event sets off: the sync of its case, through the poller's own path.

The event says only which case changed. The handler never posts from its fields: a followed case
is read back from AWS and synced by `CaseSync.sync_case`, whose per-case records (the SyncState's
watermark and pending deliveries, under the case's lock) already make a poll cycle and an event that
see the same communication post it once. An event can therefore arrive twice, late, or for a
change the poller already brought, and change nothing.

The answer is the consumer's only input for deleting the message: DONE once what the event caused
is recorded (nothing pending for the case), `retry_later` when AWS throttled or failed, Slack could
not take the posts for now, or the store did not answer; the message then comes back after a
backoff. Events for cases nobody follows are DONE at once, except CreateCase when channels watch
for new cases: those are carded as the poller would, once the case is past the watches' grace.
"""

from __future__ import annotations

import logging
import urllib.error
from collections.abc import Callable

from bot.aws.gateway import SupportGateway
from bot.domain import parse_aws_time
from bot.errors import AwsError
from bot.events.envelope import CaseEvent
from bot.events.outcome import Outcome
from bot.store.backend import StoreError
from bot.sync.cycle import CaseSync, ThreadsRefused
from bot.sync.state import utcnow
from bot.sync.watch import Watches

logger = logging.getLogger(__name__)

# account ID -> the gateway serving it, None when the bot does not serve that account.
GatewayFor = Callable[[str], SupportGateway | None]


def single_gateway(gateway: SupportGateway, own_account_id: Callable[[], str] = lambda: "") -> GatewayFor:
    """The one account of a bot: its gateway for its own events; another account's (an organisation-wide
    rule forwards every account's) costs no call. Any event while its ID is unknown (STS unreachable):
    a case ID names its account, so another account's case is never followed here anyway."""

    def gateway_for(account: str) -> SupportGateway | None:
        own = own_account_id() if account.strip() else ""
        return gateway if not own or account.strip() == own else None

    return gateway_for


class CaseEventHandler:
    """The consumer's handler (bot.events.EventHandler): idempotent, and thread-safe like CaseSync."""

    def __init__(self, *, sync: CaseSync, watches: Watches, gateway_for: GatewayFor) -> None:
        self.sync = sync
        self.watches = watches
        self.gateway_for = gateway_for
        self._unserved_seen: set[str] = set()

    def __call__(self, event: CaseEvent) -> Outcome:
        return self.handle(event)

    def handle(self, event: CaseEvent) -> Outcome:
        try:
            return self._handle(event)
        except AwsError as error:
            if error.retryable:
                return Outcome.retry_later(f"AWS {error.code or error.key}")
            # Retrying cannot change AWS's refusal; the poll cycle reports and retries the case itself.
            logger.warning("event for %s: AWS refused (%s); left to the poll cycle", event.case_id, error.code)
            return Outcome.DONE
        except ThreadsRefused as refused:
            return Outcome.retry_later(f"Slack refused the threads: {refused.params.get('error')}")
        except StoreError as error:
            return Outcome.retry_later(f"store: {type(error).__name__}")
        except (OSError, urllib.error.URLError) as error:
            return Outcome.retry_later(f"unreachable: {type(error).__name__}")

    def _handle(self, event: CaseEvent) -> Outcome:
        gateway = self.gateway_for(event.account)
        if gateway is None:
            # Said loudly once per account: an accounts file whose ID is not the credentials' own would
            # otherwise leave every live update to the poller unnoticed.
            first = event.account not in self._unserved_seen
            self._unserved_seen.add(event.account)
            logger.log(
                logging.WARNING if first else logging.INFO,
                "event for %s of account %s, which this bot does not serve: left alone%s",
                event.case_id,
                event.account,
                " (further events of this account are logged at INFO)" if first else "",
            )
            return Outcome.DONE
        # Asked first: a card whose post ends after this read has its link by the follows() below,
        # and one posted later begins its thread after the change this event announces.
        linking = self.sync.being_linked(event.case_id)
        followed = self.sync.follows(event.case_id)
        if followed:
            self.sync.sync_case(event.case_id)
            # sync_case leaves what Slack or a stop interrupted pending: the event is done once nothing is.
            state = self.sync.state(event.case_id)
            if state is not None and state.pending:
                return Outcome.retry_later(f"{len(state.pending)} deliveries still pending")
        if linking:
            # The new thread is not linked yet: the event comes back once it is, and brings it this change.
            return Outcome.retry_later("a card of the case is being posted")
        if followed:
            return Outcome.DONE
        if event.event_name == "CreateCase" and self.watches.all():
            return self._card_new_case(event, gateway)
        return Outcome.DONE

    def _card_new_case(self, event: CaseEvent, gateway: SupportGateway) -> Outcome:
        cases = gateway.describe_cases([event.case_id])
        if not cases:
            return Outcome.DONE
        created = parse_aws_time(cases[0].time_created)
        # A case opened from Slack is recorded within the grace; carding it before then could card it twice.
        if created is not None and utcnow() - created < self.watches.grace:
            return Outcome.retry_later("new case still within the watches' grace")
        # Carding failures are logged there and retried by the poll cycle; AWS's own failures raise.
        self.watches.card_new_cases()
        return Outcome.DONE
