"""A Hypothesis state machine over the record life cycle and the worker: whatever happens, after a drain the index
holds exactly the published records at their current revision.

Hypothesis drives the rules synchronously from a thread; each rule runs its coroutine on the test's event loop
(where the database engine lives) and waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Coroutine
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import text

from app import db
from app.search import worker
from app.search.postgres import PostgresBackend
from tests.search.util import (
    create_draft,
    edit_and_publish,
    edit_draft,
    publish_new,
    published_keys,
    published_revisions,
    withdraw,
)

WORDS = st.sampled_from(["moss", "fern", "reef", "delta", "tundra", "steppe"])


class Crash(Exception):
    pass


async def _crash(ids: list[int]) -> None:
    raise Crash


async def _reset() -> None:
    async with db.transaction() as s:
        await s.execute(text("TRUNCATE records, record_drafts, record_revisions, search_outbox, search_documents, "
                             "audit_events, changes RESTART IDENTITY CASCADE"))  # fmt: skip


async def _status(rid: uuid.UUID) -> str:
    async with db.read_connection() as conn:
        return str((await conn.execute(text("SELECT status FROM records WHERE id = :i"), {"i": rid})).scalar_one())


def make_machine(loop: asyncio.AbstractEventLoop, backend: PostgresBackend) -> type[RuleBasedStateMachine]:
    def run(coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=120)

    class SearchSync(RuleBasedStateMachine):
        records = Bundle("records")

        @initialize()
        def reset(self) -> None:
            run(_reset())

        @rule(target=records, word=WORDS)
        def publish(self, word: str) -> uuid.UUID:
            return run(publish_new(title={"en": f"About {word}"}))

        @rule(target=records, word=WORDS)
        def draft(self, word: str) -> uuid.UUID:
            return run(create_draft(title={"en": f"Draft {word}"}))

        @rule(rid=records, word=WORDS)
        def edit_and_republish(self, rid: uuid.UUID, word: str) -> None:
            if run(_status(rid)) in ("published", "withdrawn"):
                run(edit_and_publish(rid, title={"en": f"Edited {word}"}))

        @rule(rid=records, word=WORDS)
        def edit_only(self, rid: uuid.UUID, word: str) -> None:
            run(edit_draft(rid, title={"en": f"Unpublished {word}"}))

        @rule(rid=records)
        def withdraw(self, rid: uuid.UUID) -> None:
            if run(_status(rid)) == "published":
                run(withdraw(rid))

        @rule()
        def crash_worker(self) -> None:
            with contextlib.suppress(Crash):
                run(worker.drain(backend, after_engine=_crash))

        @rule()
        def drain(self) -> None:
            run(worker.drain(backend))
            self.check_index()

        def check_index(self) -> None:
            assert run(backend.keys()) == run(published_keys())
            revisions = run(published_revisions())
            for key, revision in revisions.items():
                assert run(backend.get_document(key))["revision"] == revision

        @invariant()
        def never_more_than_published_ever(self) -> None:
            # Before a drain the index may lag, but a draft (revision 0) is never in it.
            for key in run(backend.keys()):
                assert run(backend.get_document(key))["revision"] >= 1

        def teardown(self) -> None:
            run(worker.drain(backend))
            self.check_index()

    return SearchSync


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
async def test_index_equals_published_set(backend: PostgresBackend) -> None:
    machine = make_machine(asyncio.get_running_loop(), backend)
    config = settings(max_examples=8, stateful_step_count=8, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
    await asyncio.to_thread(run_state_machine_as_test, machine, settings=config)
