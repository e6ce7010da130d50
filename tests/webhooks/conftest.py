"""Delivery tests use the webhook fixtures."""

from tests.webhooks.fixtures import hooks, recv

__all__ = ["hooks", "recv"]
