"""Buttons and other block actions, one module per surface."""

from slack_bolt import App

from bot.listeners.actions import cases, digest, search, watch


def register(app: App) -> None:
    cases.register(app)
    digest.register(app)
    search.register(app)
    watch.register(app)
