"""Values with a meaning to every backend's tables (imported by both, and by bot.store.backend)."""

from __future__ import annotations

from typing import Any


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


# What an update's `change` returns to write nothing: the key keeps its value, or stays absent.
UNCHANGED: Any = _Unchanged()
