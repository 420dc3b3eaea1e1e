"""graphward's checkpointer on Postgres: langgraph-checkpoint-postgres's `AsyncPostgresSaver`,
in that package's own tables, so the package reads what graphward wrote and the other way
round.

Loaded by Rust as module `graphward_postgres_saver` when the server runs on `DATABASE_URI`.
`open(uri)` applies the package's migrations under a session advisory lock (replicas starting
together would otherwise race on its `checkpoint_migrations` table), then serves from a
psycopg pool that checks a connection before lending it, so a database restart costs the
calls in flight, not the process.

What the package lacks and graphward needs is added here in plain SQL on its tables:
`adelete_for_runs` (a rollback removes the checkpoints its runs wrote) and `acopy_thread`.
"""

from __future__ import annotations

import asyncio
import time

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

# Any constant other than graphward's own migration lock; "gwckpt" in ASCII.
_SETUP_LOCK = 0x6777_636B_7074

# A run's checkpoints carry its id in their metadata.
_RUN_CHECKPOINTS = "SELECT checkpoint_ns, checkpoint_id FROM checkpoints WHERE thread_id = %s AND metadata->>'run_id' = ANY(%s)"


def _connection_options():
    return {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row, "connect_timeout": 10}


async def open(uri, *, pool_size=8, serde=None):  # noqa: A001 - the module's one entry point
    """A ready saver on `uri`: migrated, with its pool open; `serde` its serializer (None: the
    package's default)."""
    async with await AsyncConnection.connect(uri, **_connection_options()) as conn:
        # Tried, not waited for: the package's migrations create indexes CONCURRENTLY, which
        # wait for every open statement, a blocked pg_advisory_lock of a replica included.
        while not (await (await conn.execute("SELECT pg_try_advisory_lock(%s) AS locked", (_SETUP_LOCK,))).fetchone())["locked"]:
            await asyncio.sleep(0.1)
        try:
            await AsyncPostgresSaver(conn).setup()
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK,))
    pool = AsyncConnectionPool(uri, min_size=1, max_size=pool_size, kwargs=_connection_options(), check=_check, reset=_returned, open=False)
    await pool.open(wait=True, timeout=10)
    return PostgresCheckpointer(pool, serde=serde)


def _names_nul(config):
    """Whether a lookup names a thread, namespace or checkpoint with a NUL character, which no
    Postgres text holds (and psycopg refuses to send): such a checkpoint cannot exist."""
    configurable = (config or {}).get("configurable", {})
    return any(isinstance(configurable.get(key), str) and "\x00" in configurable[key] for key in ("thread_id", "checkpoint_ns", "checkpoint_id"))


# A connection back in the pool within this long is lent again unchecked: checking costs a round
# trip per checkpointer call (a third of a run's time on the example graph), and one that broke
# meanwhile fails once and is replaced.
_FRESH_SECONDS = 1.0


async def _returned(conn):
    conn._graphward_returned = time.monotonic()


async def _check(conn):
    if time.monotonic() - getattr(conn, "_graphward_returned", 0.0) > _FRESH_SECONDS:
        await AsyncConnectionPool.check_connection(conn)


class PostgresCheckpointer(AsyncPostgresSaver):
    """`AsyncPostgresSaver` with the two operations graphward's API needs."""

    async def aget_tuple(self, config):
        if _names_nul(config):
            return None
        return await super().aget_tuple(config)

    async def alist(self, config, *, filter=None, before=None, limit=None):  # noqa: A002 - the saver API's name
        if _names_nul(config) or _names_nul(before):
            return
        async for item in super().alist(config, filter=filter, before=before, limit=limit):
            yield item

    async def adelete_for_runs(self, run_ids, thread_id=None):
        """Deletes the checkpoints (and their pending writes) these runs created on
        `thread_id`; a copy of the thread keeps its copies. The channel blobs stay: other
        checkpoints may share a version, and none is read without a checkpoint naming it."""
        ids = [str(run_id) for run_id in run_ids]
        if not ids or thread_id is None:
            return
        thread = str(thread_id)
        async with self.conn.connection() as conn, conn.transaction():
            rows = await (await conn.execute(_RUN_CHECKPOINTS, (thread, ids))).fetchall()
            keys = [(thread, row["checkpoint_ns"], row["checkpoint_id"]) for row in rows]
            if not keys:
                return
            async with conn.cursor() as cur:
                await cur.executemany("DELETE FROM checkpoint_writes WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = %s", keys)
                await cur.executemany("DELETE FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = %s", keys)

    async def acopy_thread(self, source_thread_id, target_thread_id):
        """Copies every checkpoint, blob and write of a thread, ids kept, thread id rewritten,
        in one transaction."""
        source, target = str(source_thread_id), str(target_thread_id)
        async with self.conn.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata) "
                "SELECT %s, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata FROM checkpoints WHERE thread_id = %s "
                "ON CONFLICT DO NOTHING",
                (target, source),
            )
            await conn.execute(
                "INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob) "
                "SELECT %s, checkpoint_ns, channel, version, type, blob FROM checkpoint_blobs WHERE thread_id = %s ON CONFLICT DO NOTHING",
                (target, source),
            )
            await conn.execute(
                "INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob) "
                "SELECT %s, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob FROM checkpoint_writes WHERE thread_id = %s "
                "ON CONFLICT DO NOTHING",
                (target, source),
            )

    async def aclose(self):
        await self.conn.close()
