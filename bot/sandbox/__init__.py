"""The AWS Support sandbox: an emulator of the AWS Support API that real boto3 talks to over HTTP.

Used by `--sandbox` (try the whole bot without a Business support plan) and by the tests.
"""

from bot.sandbox.server import SandboxServer

__all__ = ["SandboxServer"]
