"""The SQLite database: migrations, nested transactions, and what a kill -9 keeps."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from proxy.store.database import Database


def test_migrations_run_once_in_order_and_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = Database(tmp_path / "s.db")
    steps = ["CREATE TABLE a (x INTEGER)", "ALTER TABLE a ADD COLUMN y TEXT;\nCREATE INDEX a_y ON a (y)"]
    db.migrate("things", steps)
    db.migrate("things", steps)  # already there: nothing runs twice
    db.conn.execute("INSERT INTO a (x, y) VALUES (1, 'one')")
    assert db.conn.execute("SELECT version FROM schema_versions WHERE component = 'things'").fetchone()[0] == 2
    with pytest.raises(RuntimeError, match="newer than this gateway"):
        db.migrate("things", steps[:1])
    db.close()


def test_a_failed_migration_step_leaves_the_previous_version(tmp_path: Path) -> None:
    db = Database(tmp_path / "s.db")
    with pytest.raises(sqlite3.OperationalError):
        db.migrate("broken", ["CREATE TABLE b (x INTEGER)", "CREATE TABLE b (x INTEGER)"])
    assert db.conn.execute("SELECT version FROM schema_versions WHERE component = 'broken'").fetchone()[0] == 1
    db.close()


def test_nested_transactions_roll_back_only_their_part(tmp_path: Path) -> None:
    db = Database(tmp_path / "s.db")
    db.migrate("t", ["CREATE TABLE t (x INTEGER)"])
    with db.transaction() as tx:
        tx.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(ValueError), db.transaction() as inner:
            inner.execute("INSERT INTO t VALUES (2)")
            raise ValueError("undo the inner part")
        tx.execute("INSERT INTO t VALUES (3)")
    assert [r[0] for r in db.conn.execute("SELECT x FROM t ORDER BY x")] == [1, 3]
    with pytest.raises(ValueError), db.transaction() as tx:
        tx.execute("INSERT INTO t VALUES (4)")
        raise ValueError("undo everything")
    assert [r[0] for r in db.conn.execute("SELECT x FROM t ORDER BY x")] == [1, 3]
    assert not db.in_transaction
    db.close()


def test_wal_mode_and_the_synchronous_level_are_applied(tmp_path: Path) -> None:
    db = Database(tmp_path / "s.db", synchronous="full")
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    db.close()
    db = Database(tmp_path / "s.db")
    assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    db.close()


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from proxy.store.database import Database
    db = Database(Path(sys.argv[1]))
    db.start()
    db.migrate("acks", ["CREATE TABLE acks (n INTEGER PRIMARY KEY)"])
    n = 0
    while True:
        n += 1
        with db.transaction() as tx:
            tx.execute("INSERT INTO acks (n) VALUES (?)", (n,))
        print(n, flush=True)  # acknowledged: committed before it is printed
""")


def test_every_acknowledged_commit_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[2])
    assert process.stdout is not None
    acknowledged = 0
    for line in process.stdout:
        if not line.strip().isdigit():  # a log line
            continue
        acknowledged = int(line)
        if acknowledged >= 2000:
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()
    db = Database(path)
    stored = {row[0] for row in db.conn.execute("SELECT n FROM acks")}
    db.close()
    assert set(range(1, acknowledged + 1)) <= stored  # nothing acknowledged is lost
    assert stored == set(range(1, max(stored) + 1))  # and what is there is whole: no torn or partial commits


def test_the_wal_stays_bounded_under_writes_that_never_pause(tmp_path: Path) -> None:
    """A writer that never pauses starves PASSIVE checkpoints (measured here: over a gigabyte of WAL in
    3 s without the fix); past the limit the writer's own RESTART checkpoint lets the WAL start over."""
    path = tmp_path / "s.db"
    db = Database(path, wal_restart_bytes=512 * 1024)
    db.migrate("blobs", ["CREATE TABLE blobs (b BLOB)"])
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            with db.transaction() as tx:
                tx.executemany("INSERT INTO blobs VALUES (?)", [(b"x" * 2000,)] * 5)

    thread = threading.Thread(target=writer)
    thread.start()
    checker, wal, sizes = db._connect(), Path(f"{path}-wal"), []
    try:
        for _ in range(40):  # the checkpoint thread's job, twenty times faster
            db.checkpoint(checker, wal)
            sizes.append(wal.stat().st_size)
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
        checker.close()
    assert max(sizes) < 128 * 1024 * 1024, f"the WAL reached {max(sizes) // 1024} KiB"
    db.close()
