"""Review 35: a store proxy whose calls, per thread, wait for their turn in a given order of named steps.

Each actor (thread) names the store calls it will make, in order, per (table, method): the n-th such call
waits until its name heads the schedule, runs, then lets the next step go. Calls an actor never makes
(a path that returns early) are dropped from the schedule when the actor ends."""

from __future__ import annotations

import threading
from typing import Any

_local = threading.local()


class Schedule:
    def __init__(self, order: list[str], owners: dict[str, str]) -> None:
        self.order = list(order)
        self.owners = owners  # step -> actor
        self.ran: list[str] = []
        self.cv = threading.Condition()

    def turn(self, step: str) -> None:
        with self.cv:
            if not self.cv.wait_for(lambda: self.order and self.order[0] == step, timeout=10):
                raise TimeoutError(f"{step} never got its turn: {self.order}")

    def done(self, step: str) -> None:
        with self.cv:
            assert self.order[0] == step
            self.order.pop(0)
            self.ran.append(step)
            self.cv.notify_all()

    def actor_done(self, actor: str) -> None:
        with self.cv:
            self.order = [s for s in self.order if self.owners[s] != actor]
            self.cv.notify_all()

    def run(self, step: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        self.turn(step)
        try:
            return call(*args, **kwargs)
        finally:
            self.done(step)


def act(schedule: Schedule, labels: dict[tuple[str, str], list[str]]) -> None:
    """This thread's store calls, named: (table or "store", method) -> step names in call order."""
    _local.schedule = schedule
    _local.labels = {key: list(names) for key, names in labels.items()}


def stop_acting() -> None:
    _local.labels = {}


def _gated(key: tuple[str, str], call: Any, *args: Any, **kwargs: Any) -> Any:
    labels = getattr(_local, "labels", None) or {}
    names = labels.get(key)
    if not names:
        return call(*args, **kwargs)
    return _local.schedule.run(names.pop(0), call, *args, **kwargs)


class GatedTable:
    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return _gated((self._table.name, "get"), self._table.get, *args, **kwargs)

    def update(self, *args: Any, **kwargs: Any) -> Any:
        return _gated((self._table.name, "update"), self._table.update, *args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        return _gated((self._table.name, "delete"), self._table.delete, *args, **kwargs)

    def __contains__(self, key: str) -> bool:
        return key in self._table

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


class GatedStore:
    """One replica's view of a shared store."""

    exclusive = False

    def __init__(self, store: Any) -> None:
        self._store = store

    def table(self, name: str) -> Any:
        return GatedTable(self._store.table(name))

    def now(self) -> float:
        return _gated(("store", "now"), self._store.now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
