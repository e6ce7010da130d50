"""Control tests of the webhook routes use the webhook fixtures."""

from tests.webhooks.fixtures import hooks, recv

__all__ = ["hooks", "recv"]
