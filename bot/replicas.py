"""Several replicas on one database: the background workers run on one of them at a time.

Any replica serves Slack's requests. The poller and the digest scheduler (and later the event
consumer) run only on the replica that holds the store lease "background": `LeasedWorker` renews it
every ttl/3 and starts its workers once it holds it; a replica that dies stops renewing, and another
one takes the lease over when it expires (ttl 20 s: within 30 s of the holder's death).

Never two at once: the holder counts its hold with its own monotonic clock from before it asked, and
stops its workers once two renewals in a row failed (2/3 ttl after the last success), while the lease
by the database's clock lasts a full ttl from after it asked. The last third is the workers' time to
stop. A replica frozen longer than that (a paused VM) may run one more cycle beside the new holder;
the store's claims keep that from posting anything twice.

With a sqlite file there is one process, so nothing to elect: `background_workers` runs the workers
directly, as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.store.backend import Store, StoreError
from bot.store.lease import Lease, Leases, replica_id

if TYPE_CHECKING:
    from bot.services import Worker

logger = logging.getLogger(__name__)

BACKGROUND_LEASE = "background"
LEASE_TTL_SECONDS = 20.0
# A standby asks again no later than this after the lease's expiry, so that takeover is prompt.
TAKEOVER_SLACK_SECONDS = 0.2
# A holder whose renewal failed tries again this often until it must give up.
RETRY_SECONDS = 1.0


def _iso(epoch: float) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else None


class LeasedMember:
    """One background worker under a LeasedWorker: what /healthz lists under the worker's own name.

    Its `start` and `stop` do nothing (the LeasedWorker runs it only while holding the lease), so that
    Services can treat it like any worker. A worker cannot be restarted once stopped, so each run gets a
    fresh instance from `factory`; the state worth keeping lives in the store and in Services' parts.
    """

    def __init__(self, factory: Callable[[], Worker], lease: LeasedWorker) -> None:
        self._factory = factory
        self._lease = lease
        self._current = factory()
        self._used = False
        self._running = False
        self.name = self._current.name

    def start(self) -> None:
        """Started by its LeasedWorker once the lease is held."""

    def stop(self) -> None:
        """Stopped by its LeasedWorker."""

    @property
    def running(self) -> bool:
        return self._running

    def run(self) -> bool:
        """Start a fresh instance; False while the previous one is still winding down."""
        if self._running:
            return True
        if self._current.is_alive():
            return False
        if self._used:
            self._current = self._factory()
        self._used = True
        self._current.start()
        self._running = True
        return True

    def winding_down(self) -> bool:
        """Stopped, but its thread has not ended yet."""
        return not self._running and self._current.is_alive()

    def halt(self) -> None:
        if self._running:
            self._running = False
            self._current.stop()

    def is_alive(self) -> bool:
        if not self._lease.is_alive():
            return False
        return self._current.is_alive() if self._running else True

    def health(self) -> dict[str, Any]:
        if self._running:
            return {**self._current.health(), "standby": False}
        return {"standby": True, "lease_holder": self._lease.holder}


class LeasedWorker:
    """Holds the lease `lease` for this replica and runs `members` only while it holds it."""

    name = "lease"

    def __init__(
        self,
        store: Store,
        factories: Sequence[Callable[[], Worker]],
        *,
        lease: str = BACKGROUND_LEASE,
        ttl: float = LEASE_TTL_SECONDS,
        owner: str | None = None,
    ) -> None:
        self.lease = lease
        self.ttl = ttl
        self.owner = owner or replica_id()
        self.members = [LeasedMember(factory, self) for factory in factories]
        self._leases = Leases(store)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Store calls run here so that a hung database cannot keep the loop from stopping the workers.
        self._calls = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lease-{lease}")
        self._last: Lease | None = None
        self._held = False
        self._hold_until = 0.0  # time.monotonic(): the workers stop by then unless a renewal succeeds
        self._takeovers = 0
        self._pending: tuple[float, Future[Lease]] | None = None

    # Worker protocol ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"lease-{self.lease}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the workers, then hand the lease over at once (a rolling deploy's old replica)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        self._halt_members()
        if self._held and not any(member.winding_down() for member in self.members):
            try:
                self._calls.submit(self._leases.release, self.lease, self.owner).result(timeout=5)
            except (StoreError, FutureTimeout):
                logger.warning("could not release the %s lease; another replica takes it when it expires", self.lease)
        self._held = False
        self._calls.shutdown(wait=False, cancel_futures=True)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def health(self) -> dict[str, Any]:
        last = self._last
        return {
            "lease": self.lease,
            "replica": self.owner,
            "holder": self.holder,
            "held_here": self._held,
            "expires_at": _iso(last.expires_at) if last and not last.free else None,
            "ttl_seconds": self.ttl,
            "takeovers": self._takeovers,
        }

    @property
    def holder(self) -> str | None:
        last = self._last
        return last.holder if last and not last.free else None

    @property
    def held(self) -> bool:
        return self._held

    # The loop ----------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(self.tick())

    def tick(self) -> float:
        """One renewal (or attempt to take the lease); returns the seconds until the next one."""
        if self._held:
            call = lambda: self._leases.renew(self.lease, self.owner, self.ttl)  # noqa: E731
            timeout = max(0.0, self._hold_until - time.monotonic())
        else:
            call = lambda: self._leases.acquire(self.lease, self.owner, self.ttl)  # noqa: E731
            timeout = self.ttl / 3
        asked, lease = self._ask_lease(call, timeout)
        if lease is not None:
            self._last = lease
        if lease is not None and lease.held_by(self.owner):
            # Counted from before the request: the database's expiry comes later than this deadline.
            self._hold_until = asked + self.ttl * 2 / 3
            if not self._held:
                logger.info("replica %s holds the %s lease: starting its workers", self.owner, self.lease)
                self._takeovers += 1
            self._held = True
            started = [member.run() for member in self.members]
            return self.ttl / 3 if all(started) else RETRY_SECONDS
        if self._held and (lease is not None or time.monotonic() >= self._hold_until):
            why = f"now held by {lease.holder or 'nobody'}" if lease is not None else "renewals failed"
            logger.warning("replica %s lost the %s lease (%s): stopping its workers", self.owner, self.lease, why)
            self._held = False
            self._halt_members()
        if self._held:
            # Renewal failed but the hold has time left: try again soon, and stop in time if it never works.
            return max(0.0, min(RETRY_SECONDS, self._hold_until - time.monotonic()))
        if lease is None:
            return self.ttl / 3
        # Another replica holds it: ask again just after it would expire, unless renewed meanwhile.
        return min(self.ttl / 3, lease.remaining + TAKEOVER_SLACK_SECONDS)

    def _ask_lease(self, call: Callable[[], Lease], timeout: float) -> tuple[float, Lease | None]:
        """(when asked, the lease) or (when asked, None) when the store failed or did not answer in time.

        A call that outlives its timeout is waited for by the next tick instead of queueing another one
        behind it; its answer still counts from when it was asked."""
        if self._pending is None or self._pending[1].done():
            self._pending = (time.monotonic(), self._calls.submit(call))
        asked, future = self._pending
        try:
            lease = future.result(timeout=timeout)
        except FutureTimeout:
            logger.warning("the store did not answer about the %s lease within %.1f s", self.lease, timeout)
            return asked, None
        except StoreError as error:
            logger.warning("could not check the %s lease: %s", self.lease, error)
            return asked, None
        except Exception:  # noqa: BLE001 - the lease loop's one boundary: log, keep trying
            logger.exception("%s lease check failed", self.lease)
            return asked, None
        return asked, lease

    def _halt_members(self) -> None:
        for member in self.members:
            member.halt()


def background_workers(store: Store, factories: Sequence[Callable[[], Worker]], *, shared: bool) -> list[Worker]:
    """The workers to register: on a shared store (PostgreSQL) under one lease, the LeasedWorker first
    and each member under its own name for /healthz; on a sqlite file (one process) the workers
    themselves."""
    if not shared:
        return [factory() for factory in factories]
    leased = LeasedWorker(store, factories)
    return [leased, *leased.members]
