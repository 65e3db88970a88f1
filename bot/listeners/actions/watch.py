"""Buttons of the watch surface: none yet (watch and unwatch are slash sub-commands only)."""

from slack_bolt import App


def register(app: App) -> None:
    """Kept so the watch surface has its place beside the others when it gets buttons."""
