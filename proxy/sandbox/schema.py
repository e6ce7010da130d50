"""The sandbox's tables (``db.migrate("sandbox", MIGRATIONS)``): append-only migrations, never edited.

Every row belongs to one workspace and every lookup names it, so another workspace's id is simply
not found (404). ``seq`` orders lists (newest first) and is never shown: cursors carry object ids,
which a seeded workspace makes the same on every run. Times are seconds on the workspace's clock
(its timeline). A message's history is its first state (``queued``; ``received`` for an inbound one) at
its ``created_at``, then one ``sandbox_message_events`` row per transition, which also keeps ``ran_at``,
the gateway's clock when the transition was made, so lateness can be measured.

No ``AUTOINCREMENT``: ``seq`` only orders rows, and AUTOINCREMENT's bookkeeping row costs every insert
another write. Durability: proxy/store/database.py (WAL, ``synchronous=NORMAL``).
"""

from __future__ import annotations

MIGRATIONS = [
    """
    CREATE TABLE sandbox_workspaces (
        id TEXT PRIMARY KEY,
        policy TEXT NOT NULL,
        seed TEXT,
        start REAL,
        counter INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE TABLE sandbox_contacts (
        seq INTEGER PRIMARY KEY,
        workspace TEXT NOT NULL,
        id TEXT NOT NULL,
        phone TEXT,
        email TEXT,
        first_name TEXT,
        last_name TEXT,
        tags TEXT NOT NULL DEFAULT '[]',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (workspace, id)
    );
    CREATE UNIQUE INDEX sandbox_contacts_phone ON sandbox_contacts (workspace, phone) WHERE phone IS NOT NULL;
    CREATE UNIQUE INDEX sandbox_contacts_email ON sandbox_contacts (workspace, email) WHERE email IS NOT NULL;
    CREATE INDEX sandbox_contacts_order ON sandbox_contacts (workspace, seq);
    CREATE TABLE sandbox_suppression (
        seq INTEGER PRIMARY KEY,
        workspace TEXT NOT NULL,
        id TEXT NOT NULL,
        identifier TEXT NOT NULL,
        channel TEXT NOT NULL,
        reason TEXT NOT NULL,
        reason_detail TEXT,
        created_at REAL NOT NULL,
        UNIQUE (workspace, id),
        UNIQUE (workspace, identifier, channel)
    );
    CREATE INDEX sandbox_suppression_order ON sandbox_suppression (workspace, seq);
    CREATE TABLE sandbox_templates (
        seq INTEGER PRIMARY KEY,
        workspace TEXT NOT NULL,
        id TEXT NOT NULL,
        name TEXT NOT NULL,
        category TEXT NOT NULL,
        language TEXT NOT NULL,
        body TEXT NOT NULL,
        header_format TEXT,
        status TEXT NOT NULL,
        rejection_reason TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (workspace, id),
        UNIQUE (workspace, name, language)
    );
    CREATE INDEX sandbox_templates_order ON sandbox_templates (workspace, seq);
    CREATE TABLE sandbox_messages (
        seq INTEGER PRIMARY KEY,
        workspace TEXT NOT NULL,
        id TEXT NOT NULL,
        direction TEXT NOT NULL,
        channel TEXT NOT NULL,
        status TEXT NOT NULL,
        generation INTEGER NOT NULL DEFAULT 0,
        contact_id TEXT,
        phone TEXT,
        email TEXT,
        template_id TEXT,
        subject TEXT,
        body TEXT,
        failure_reason TEXT,
        in_reply_to TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (workspace, id)
    );
    CREATE INDEX sandbox_messages_order ON sandbox_messages (workspace, seq);
    CREATE TABLE sandbox_message_events (
        seq INTEGER PRIMARY KEY,
        workspace TEXT NOT NULL,
        message TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        at REAL NOT NULL,
        ran_at REAL NOT NULL
    );
    CREATE INDEX sandbox_message_events_by_message ON sandbox_message_events (workspace, message, seq)
    """,
]

# Every table holding a workspace's data, for reset and counts (workspaces themselves excluded).
DATA_TABLES = ("sandbox_contacts", "sandbox_suppression", "sandbox_templates", "sandbox_messages",
               "sandbox_message_events")
