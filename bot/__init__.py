"""aws-support-bot: run AWS Support from Slack."""

__version__ = "0.1.0"
