"""Reading Block Kit back in tests: every text a person would see."""

from __future__ import annotations

from typing import Any


def texts_in(node: Any) -> list[str]:
    """Every `text` string anywhere under a block, message or view, in document order."""
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("text"), str):
            found.append(node["text"])
        for value in node.values():
            found.extend(texts_in(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(texts_in(value))
    return found
