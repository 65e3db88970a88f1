"""The background loops that run beside the web server."""

from __future__ import annotations

from bot.services import Services


def register_workers(services: Services) -> None:
    from bot.digest.schedule import ScheduleWorker
    from bot.sync.cycle import Poller

    services.workers.extend([Poller(services), ScheduleWorker(services), services.cases.keeper])
