"""The background loops that run beside the web server."""

from __future__ import annotations

from bot.services import Services


def register_workers(services: Services) -> None:
    from bot.schedule import ScheduleWorker
    from bot.sync import Poller

    services.workers.extend([Poller(services), ScheduleWorker(services)])
