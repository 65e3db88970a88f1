"""The sandbox's state on disk: one JSON document, replaced atomically on every change."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


class JsonStateFile:
    """Saves whole snapshots; a crash mid-write leaves the previous file intact."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self._lock = threading.Lock()

    def load(self) -> dict[str, Any] | None:
        try:
            with open(self.path, encoding="utf-8") as handle:
                raw = json.load(handle)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            # A person's sandbox should still start; the broken file is kept for inspection.
            logger.warning("sandbox state %s is unreadable; starting empty", self.path, exc_info=True)
            return None
        if not isinstance(raw, dict) or raw.get("version") != FORMAT_VERSION:
            logger.warning("sandbox state %s has an unknown format; starting empty", self.path)
            return None
        return raw

    def save(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        """`snapshot` runs under this file's lock, so the last file written is the newest state."""
        with self._lock:
            data = {"version": FORMAT_VERSION, **snapshot()}
            directory = os.path.dirname(self.path)
            os.makedirs(directory, exist_ok=True)
            handle, temp_path = tempfile.mkstemp(prefix=".sandbox-", suffix=".json", dir=directory)
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    json.dump(data, out, ensure_ascii=False)
                os.replace(temp_path, self.path)
            except BaseException:
                os.unlink(temp_path)
                raise
