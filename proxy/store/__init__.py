"""The embedded store: everything the gateway must remember across requests and restarts.

One SQLite file (``state.db`` under ``TESTMODE_PROXY_STATE_DIR``) holds every component's tables;
each component owns its tables and its forward migrations (:meth:`Database.migrate`). The request
path only touches it for requests that need state (an ``Idempotency-Key``, a sandbox key): the
stateless test-mode and live paths never do.

Modules: :mod:`~proxy.store.database` (connection, transactions, migrations, checkpoints),
:mod:`~proxy.store.schedule` (due work on timelines), :mod:`~proxy.store.outbox` (events waiting for
delivery). Domain stores (idempotency records, sandbox workspaces, webhook subscriptions) live beside
them and share the one :class:`~proxy.store.database.Database`, so one transaction can span them.
"""
