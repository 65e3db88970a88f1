"""Placeholder for Trusted Advisor digests (issue: Trusted Advisor digests)."""

from __future__ import annotations

from typing import Any, TextIO


class DigestService:
    def __init__(self, services: Any) -> None:
        self.services = services


def print_digest(services: Any, *, as_json: bool, out: TextIO) -> int:
    out.write("Trusted Advisor digests are not built yet.\n")
    return 1
