"""The background loops that run beside the web server."""

from __future__ import annotations

from bot.services import Services


def register_workers(services: Services) -> None:
    from bot.digest.schedule import ScheduleWorker
    from bot.replicas import background_workers
    from bot.sync.cycle import Poller

    # On PostgreSQL several replicas may share the store: the loops run on the one holding the lease.
    factories = [lambda: Poller(services), lambda: ScheduleWorker(services)]
    services.workers.extend(background_workers(services.store, factories, shared=bool(services.settings.database_url)))
    # Every replica renews the journal leases it holds and sweeps up after dead ones: not under the lease.
    services.workers.append(services.cases.keeper)
