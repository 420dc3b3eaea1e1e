"""graphward's checkpointer: LangGraph checkpoints in a SQLite file, with the standard library.

Loaded by Rust as module `graphward_saver`; `runner.setup` opens one `SqliteCheckpointer` on
the checkpoint database next to graphward's own (`<database>.checkpoints.db`).

Why not langgraph-checkpoint-sqlite's AsyncSqliteSaver: most `langgraph dev` environments do
not have that package (checkpoints then lived in memory, lost on restart and growing with
every run), and its aiosqlite connection sends every statement through a helper thread. A
statement on a local WAL file takes tens of microseconds, so this saver runs them inline on
the calling thread, the interpreter's loop, under a lock (sync callers on other threads, e.g.
a sync node calling `graph.get_state`, are serialized with it).

The tables and encodings are those of langgraph-checkpoint-sqlite (`checkpoints` and `writes`,
checkpoint blobs from `serde.dumps_typed`, metadata as JSON text), so a database written by
either can be read by the other.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)

try:
    from langgraph.checkpoint.serde.types import TASKS
except ImportError:  # pragma: no cover - older versions
    TASKS = "__pregel_tasks"

try:  # langgraph-checkpoint >= 4.3: the order a super-step's writes are replayed in
    from langgraph.checkpoint.base import writes_sort_key
except ImportError:  # pragma: no cover - older versions replay by (task_id, idx)

    def writes_sort_key(task_path: str, task_id: str = "", idx: int = 0) -> tuple[str, str, int]:
        return (task_path, task_id, idx)


SCHEMA = """
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS checkpoints (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    checkpoint_id TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    type TEXT,
    checkpoint BLOB,
    metadata BLOB,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
);
CREATE TABLE IF NOT EXISTS writes (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    task_path TEXT NOT NULL DEFAULT '',
    idx INTEGER NOT NULL,
    channel TEXT NOT NULL,
    type TEXT,
    value BLOB,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);
"""

_COLUMNS = "thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata"


def _config(thread_id, namespace, checkpoint_id):
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": namespace, "checkpoint_id": checkpoint_id}}


def _metadata_text(metadata):
    # Metadata is JSON (as in langgraph-checkpoint-sqlite); a value JSON cannot hold is kept
    # as its text instead of failing the run.
    return json.dumps(metadata, ensure_ascii=False, default=str).encode("utf-8", "ignore")


class SqliteCheckpointer(BaseCheckpointSaver):
    """A `BaseCheckpointSaver` over one SQLite file (see the module docstring)."""

    def __init__(self, path, *, serde=None):
        super().__init__(serde=serde)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.executescript(SCHEMA)
        try:  # databases made before `task_path` existed
            self._db.execute("ALTER TABLE writes ADD COLUMN task_path TEXT NOT NULL DEFAULT ''")
        except sqlite3.OperationalError as error:
            if "duplicate column name" not in str(error):
                raise

    def close(self):
        with self._lock:
            self._db.close()

    # ---- reads

    def _tuple(self, row, requested=None):
        thread_id, namespace, checkpoint_id, parent_id, type_, blob, metadata = row
        writes = self._db.execute(
            "SELECT task_id, channel, type, value, task_path, idx FROM writes WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
            (thread_id, namespace, checkpoint_id),
        ).fetchall()
        writes.sort(key=lambda write: writes_sort_key(write[4], write[0], write[5]))
        return CheckpointTuple(
            requested or _config(thread_id, namespace, checkpoint_id),
            self.serde.loads_typed((type_, blob)),
            json.loads(metadata) if metadata is not None else {},
            _config(thread_id, namespace, parent_id) if parent_id else None,
            [(task_id, channel, self.serde.loads_typed((value_type, value))) for task_id, channel, value_type, value, _, _ in writes],
        )

    def get_tuple(self, config):
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        namespace = configurable.get("checkpoint_ns", "")
        checkpoint_id = get_checkpoint_id(config)
        with self._lock:
            if checkpoint_id:
                row = self._db.execute(
                    f"SELECT {_COLUMNS} FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
                    (thread_id, namespace, checkpoint_id),
                ).fetchone()
            else:
                row = self._db.execute(
                    f"SELECT {_COLUMNS} FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? ORDER BY checkpoint_id DESC LIMIT 1",
                    (thread_id, namespace),
                ).fetchone()
            if row is None:
                return None
            return self._tuple(row, config if checkpoint_id else None)

    def list(self, config, *, filter=None, before=None, limit=None) -> Iterator[CheckpointTuple]:
        """Newest first. `filter` keeps checkpoints whose metadata has each key equal to the
        value (compared in Python, as InMemorySaver does)."""
        wheres, params = [], []
        if config is not None:
            configurable = config["configurable"]
            wheres.append("thread_id = ?")
            params.append(str(configurable["thread_id"]))
            if configurable.get("checkpoint_ns") is not None:
                wheres.append("checkpoint_ns = ?")
                params.append(configurable["checkpoint_ns"])
            if get_checkpoint_id(config):
                wheres.append("checkpoint_id = ?")
                params.append(get_checkpoint_id(config))
        if before is not None and get_checkpoint_id(before):
            wheres.append("checkpoint_id < ?")
            params.append(get_checkpoint_id(before))
        where = f"WHERE {' AND '.join(wheres)}" if wheres else ""
        query = f"SELECT {_COLUMNS} FROM checkpoints {where} ORDER BY checkpoint_id DESC"
        if limit is not None and not filter:
            query += " LIMIT ?"
            params.append(int(limit))
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        produced = 0
        for row in rows:
            if limit is not None and produced >= limit:
                return
            if filter:
                metadata = json.loads(row[6]) if row[6] is not None else {}
                if not all(metadata.get(key) == value for key, value in filter.items()):
                    continue
            with self._lock:
                item = self._tuple(row)
            produced += 1
            yield item

    # ---- writes

    def put(self, config, checkpoint, metadata, new_versions):
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        namespace = configurable.get("checkpoint_ns", "")
        type_, blob = self.serde.dumps_typed(checkpoint)
        meta = _metadata_text(get_checkpoint_metadata(config, metadata))
        with self._lock:
            self._db.execute(
                f"INSERT OR REPLACE INTO checkpoints ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (thread_id, namespace, checkpoint["id"], configurable.get("checkpoint_id"), type_, blob, meta),
            )
        return _config(thread_id, namespace, checkpoint["id"])

    def put_writes(self, config, writes: Sequence[tuple[str, Any]], task_id, task_path=""):
        configurable = config["configurable"]
        key = (str(configurable["thread_id"]), configurable.get("checkpoint_ns", ""), str(configurable["checkpoint_id"]))
        # Special channels (errors, interrupts, ...) overwrite; ordinary writes are kept once.
        verb = "INSERT OR REPLACE" if all(channel in WRITES_IDX_MAP for channel, _ in writes) else "INSERT OR IGNORE"
        rows = [
            (*key, task_id, task_path, WRITES_IDX_MAP.get(channel, index), channel, *self.serde.dumps_typed(value))
            for index, (channel, value) in enumerate(writes)
        ]
        with self._lock:
            self._in_transaction(
                lambda: self._db.executemany(
                    f"{verb} INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            )

    def delete_thread(self, thread_id):
        thread_id = str(thread_id)
        with self._lock:
            self._in_transaction(
                lambda: (
                    self._db.execute("DELETE FROM checkpoints WHERE thread_id = ?", (thread_id,)),
                    self._db.execute("DELETE FROM writes WHERE thread_id = ?", (thread_id,)),
                )
            )

    def delete_for_runs(self, run_ids, thread_id=None):
        """Deletes the checkpoints (and their writes) that these runs created — in `thread_id`
        only, when given: a copy of the thread keeps its copies of them."""
        ids = [str(run_id) for run_id in run_ids]
        if not ids:
            return
        marks = ", ".join("?" for _ in ids)
        scope, scope_args = ("thread_id = ? AND ", [str(thread_id)]) if thread_id is not None else ("", [])

        def delete():
            doomed = self._db.execute(
                f"SELECT thread_id, checkpoint_ns, checkpoint_id FROM checkpoints WHERE {scope}json_extract(CAST(metadata AS TEXT), '$.run_id') IN ({marks})",
                [*scope_args, *ids],
            ).fetchall()
            self._db.executemany("DELETE FROM writes WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?", doomed)
            self._db.executemany("DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?", doomed)

        with self._lock:
            self._in_transaction(delete)

    def copy_thread(self, source_thread_id, target_thread_id):
        """Copies every checkpoint and write of a thread, ids kept, thread id rewritten."""
        source, target = str(source_thread_id), str(target_thread_id)

        def copy():
            self._db.execute(
                f"INSERT OR REPLACE INTO checkpoints ({_COLUMNS}) SELECT ?, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata FROM checkpoints WHERE thread_id = ?",
                (target, source),
            )
            self._db.execute(
                "INSERT OR REPLACE INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value) "
                "SELECT ?, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value FROM writes WHERE thread_id = ?",
                (target, source),
            )

        with self._lock:
            self._in_transaction(copy)

    def prune(self, thread_ids, *, strategy="keep_latest"):
        """`delete`: as `delete_thread`. `keep_latest`: each namespace of each thread keeps its
        latest checkpoint (and the parent whose pending sends it reads, if it has any), with
        their writes; the rest goes, and a kept checkpoint whose parent went has none. Threads
        whose graph uses a DeltaChannel (its state is spread over the chain) are refused with
        NotImplementedError, as langgraph-checkpoint-postgres refuses them."""
        if isinstance(thread_ids, str):
            raise TypeError("thread_ids must be a sequence of thread IDs, not a str")
        if strategy not in ("delete", "keep_latest"):
            raise ValueError(f"Unknown prune strategy: {strategy!r}")
        for thread_id in (str(thread_id) for thread_id in thread_ids):
            if strategy == "delete":
                self.delete_thread(thread_id)
                continue
            with self._lock:
                self._in_transaction(lambda thread_id=thread_id: self._keep_latest(thread_id))

    def _keep_latest(self, thread_id):
        delta = self._db.execute(
            "SELECT 1 FROM checkpoints WHERE thread_id = ? AND (json_extract(CAST(metadata AS TEXT), '$.counters_since_delta_snapshot') IS NOT NULL "
            "OR json_extract(CAST(metadata AS TEXT), '$.delta_writes_versioned') IS NOT NULL) LIMIT 1",
            (thread_id,),
        ).fetchone()
        if delta:
            raise NotImplementedError(f"keep_latest can't prune threads that use a DeltaChannel: {thread_id}")
        heads = self._db.execute(
            "SELECT checkpoint_ns, MAX(checkpoint_id) FROM checkpoints WHERE thread_id = ? GROUP BY checkpoint_ns", (thread_id,)
        ).fetchall()
        for namespace, head in heads:
            kept = [head]
            parent = self._db.execute(
                "SELECT c.parent_checkpoint_id FROM checkpoints c WHERE c.thread_id = ? AND c.checkpoint_ns = ? AND c.checkpoint_id = ? AND EXISTS ("
                "SELECT 1 FROM writes w WHERE w.thread_id = c.thread_id AND w.checkpoint_ns = c.checkpoint_ns AND w.checkpoint_id = c.parent_checkpoint_id AND w.channel = ?)",
                (thread_id, namespace, head, TASKS),
            ).fetchone()
            if parent and parent[0]:
                kept.append(parent[0])
            marks = ", ".join("?" for _ in kept)
            scope = (thread_id, namespace, *kept)
            self._db.execute(f"DELETE FROM writes WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id NOT IN ({marks})", scope)
            self._db.execute(f"DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id NOT IN ({marks})", scope)
            self._db.execute(
                f"UPDATE checkpoints SET parent_checkpoint_id = NULL WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id IN ({marks}) "
                f"AND parent_checkpoint_id NOT IN ({marks})",
                (*scope, *kept),
            )

    def _in_transaction(self, work):
        self._db.execute("BEGIN IMMEDIATE")
        try:
            work()
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def get_next_version(self, current, channel=None):
        """`<counter, 32 digits>.<random>`: increasing, and the format of
        langgraph-checkpoint-sqlite, so either saver can continue the other's threads."""
        if current is None:
            counter = 0
        elif isinstance(current, (int, float)):
            counter = int(current)
        else:
            counter = int(str(current).split(".")[0])
        return f"{counter + 1:032}.{random.random():016}"

    # ---- async: the same calls, inline (a local WAL file answers in microseconds)

    async def aget_tuple(self, config):
        return self.get_tuple(config)

    async def alist(self, config, *, filter=None, before=None, limit=None):
        for item in self.list(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(self, config, checkpoint, metadata, new_versions):
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config, writes, task_id, task_path=""):
        return self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id):
        return self.delete_thread(thread_id)

    async def adelete_for_runs(self, run_ids, thread_id=None):
        return self.delete_for_runs(run_ids, thread_id)

    async def acopy_thread(self, source_thread_id, target_thread_id):
        return self.copy_thread(source_thread_id, target_thread_id)

    async def aprune(self, thread_ids, *, strategy="keep_latest"):
        return self.prune(thread_ids, strategy=strategy)
