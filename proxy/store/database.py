"""One SQLite database: WAL, explicit transactions, per-component migrations, background checkpoints.

Durability (``reliability.md``, "Durable state"): WAL with ``synchronous=NORMAL`` by default. A commit
is in the WAL file, in the OS's page cache, when it returns, so it survives ``kill -9`` of the gateway
(the failure this product must survive: a pod killed, a process crashed); a power loss or kernel crash
may lose the last commits before the OS wrote them out. ``synchronous=FULL``
(``TESTMODE_PROXY_STATE_SYNCHRONOUS=full``) fsyncs every commit and closes that window too, at the cost
of one fsync per transaction on the event loop. SQLite applies ``synchronous`` per connection, not per
table, and every table here has the same need (acknowledged to a client, or a promised state
transition), so one level serves them all.

Statements run on the event loop's thread: a point read or a small WAL commit costs tens of
microseconds, less than handing the work to a thread and back. What can take milliseconds, the WAL
checkpoint (which fsyncs the database file), runs on a thread of its own with its own connection
(``wal_autocheckpoint`` is off on the loop's connection). Writers from other processes (the CLI) wait
up to ``busy_timeout``; ``BEGIN IMMEDIATE`` takes the write lock at the start of a transaction, so two
writers never deadlock upgrading a read lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import structlog

log = structlog.get_logger("proxy.store")

Synchronous = Literal["normal", "full"]
Migration = str | Callable[[sqlite3.Connection], None]

_SCHEMA_VERSIONS = """CREATE TABLE IF NOT EXISTS schema_versions (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL
)"""


class Database:
    """The gateway's SQLite file. ``transaction()`` nests (savepoints); ``close()`` checkpoints."""

    def __init__(
        self,
        path: Path,
        *,
        synchronous: Synchronous = "normal",
        busy_timeout: float = 5.0,
        checkpoint_interval: float = 1.0,
        wal_restart_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self.path = path
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.checkpoint_interval = checkpoint_interval
        self.wal_restart_bytes = wal_restart_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = self._connect()
        self.conn.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpoint thread does it (module docstring)
        self._depth = 0
        self._restart_due = False
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        with self.transaction() as tx:
            tx.execute(_SCHEMA_VERSIONS)

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; every write is inside transaction().
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=self.busy_timeout)
        conn.row_factory = sqlite3.Row
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise RuntimeError(f"{self.path}: SQLite would not use WAL (journal_mode={mode})")
        conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA journal_size_limit = {self.wal_restart_bytes}")  # the WAL shrinks back after a reset
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``); inside another one, a savepoint, so domain methods
        compose: a lifecycle step, its event and its next step commit together or not at all."""
        conn = self.conn
        if self._depth:
            name = f"sp{self._depth}"
            conn.execute(f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield conn
            except BaseException:
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
                raise
            else:
                conn.execute(f"RELEASE {name}")
            finally:
                self._depth -= 1
            return
        conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
        finally:
            self._depth = 0
        if self._restart_due:
            self._restart_if_due()

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def migrate(self, component: str, steps: Sequence[Migration]) -> None:
        """Bring ``component``'s tables to ``len(steps)``: run each step not yet applied, in order, each
        in its own transaction with the version bump. Steps are append-only: never edit a shipped one.
        A database newer than this code (a rollback of the gateway) is refused, never guessed at."""
        row = self.conn.execute("SELECT version FROM schema_versions WHERE component = ?", (component,)).fetchone()
        current = row[0] if row else 0
        if current > len(steps):
            raise RuntimeError(f"{self.path}: {component} schema is version {current}, newer than this gateway "
                               f"({len(steps)}); upgrade the gateway or use another TESTMODE_PROXY_STATE_DIR")
        for version, step in enumerate(steps[current:], start=current + 1):
            with self.transaction() as tx:
                if isinstance(step, str):
                    for statement in _statements(step):
                        tx.execute(statement)
                else:
                    step(tx)
                tx.execute("INSERT INTO schema_versions (component, version) VALUES (?, ?) "
                           "ON CONFLICT (component) DO UPDATE SET version = excluded.version", (component, version))
            log.info("store_migrated", component=component, version=version)

    def start(self) -> None:
        """Start the checkpoint thread."""
        if self._checkpointer is None:
            self._stop.clear()
            self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="sqlite-checkpoint",
                                                  daemon=True)
            self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        conn = self._connect()
        wal = Path(f"{self.path}-wal")
        try:
            while not self._stop.wait(self.checkpoint_interval):
                try:
                    self.checkpoint(conn, wal)
                except sqlite3.Error as exc:  # busy or locked: try again next time
                    log.warning("store_checkpoint_failed", error=str(exc))
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection, wal: Path) -> None:
        """A PASSIVE checkpoint (here, on the checkpoint thread) never waits for the writer; but under
        writes that never pause it never catches up either, and the WAL only starts over from its
        beginning once a checkpoint has caught up, so the file would grow without bound (measured:
        ~100 MB after 30,000 keyed requests at full speed). Past ``wal_restart_bytes`` the writer itself
        is asked to finish the job (:meth:`_restart_if_due`): it is the only writer, so its RESTART
        checkpoint cannot be starved, and what is left to copy after this pass is small."""
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        try:
            size = wal.stat().st_size
        except OSError:
            return
        if size > self.wal_restart_bytes:
            self._restart_due = True

    def _restart_if_due(self) -> None:
        """After a commit on the writer's connection: a RESTART checkpoint if the checkpoint thread asked
        for one. It does not wait for anyone (busy_timeout 0): if the thread is mid-checkpoint, the next
        commit tries again. ``journal_size_limit`` then shrinks the file."""
        self._restart_due = False
        conn = self.conn
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            busy = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
            if busy:
                self._restart_due = True
        except sqlite3.Error:
            self._restart_due = True
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")

    def close(self) -> None:
        self._stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=10)
            self._checkpointer = None
        try:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.warning("store_checkpoint_failed", error=str(exc))
        self.conn.close()


def _statements(script: str) -> list[str]:
    """Split a migration script on ``;`` at line ends (migrations hold no ``;`` inside literals)."""
    return [s.strip() for s in script.split(";\n") if s.strip().rstrip(";").strip()]
