"""A `checkpointer.path` saver for the tests: LangGraph's InMemorySaver that appends every
call graphward makes of it to the file named by RECORDING_SAVER_LOG, opened and closed as an
@asynccontextmanager (the form the reference documents)."""

import os
from contextlib import asynccontextmanager

from langgraph.checkpoint.memory import InMemorySaver


def record(*words):
    with open(os.environ["RECORDING_SAVER_LOG"], "a") as log:
        log.write(" ".join(str(word) for word in words) + "\n")


class RecordingSaver(InMemorySaver):
    async def aput(self, config, checkpoint, metadata, new_versions):
        record("aput", config["configurable"]["thread_id"])
        return await super().aput(config, checkpoint, metadata, new_versions)

    async def adelete_thread(self, thread_id):
        record("adelete_thread", thread_id)
        return await super().adelete_thread(thread_id)


@asynccontextmanager
async def saver():
    record("enter")
    try:
        yield RecordingSaver()
    finally:
        record("exit")


not_a_saver = {"kind": "memory"}


class CountingSaver(InMemorySaver):
    """Named as a class: graphward makes the instance."""

    async def aput(self, config, checkpoint, metadata, new_versions):
        record("class aput", config["configurable"]["thread_id"])
        return await super().aput(config, checkpoint, metadata, new_versions)
