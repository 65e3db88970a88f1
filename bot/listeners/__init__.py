"""Slack surfaces: each module parses a payload, calls a service and renders a template."""

from slack_bolt import App

from bot.listeners import actions, commands, events, options, views


def register_listeners(app: App) -> None:
    commands.register(app)
    actions.register(app)
    views.register(app)
    options.register(app)
    events.register(app)
