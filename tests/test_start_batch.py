"""The server's start batcher (``engine.server.start_batch``) on SQLite and PostgreSQL: starts
awaited together are written in one transaction, a batch at most ``max_batch`` long, each
request answered with its own outcome; a failed batch fails each of its requests and keeps
nothing; a request whose client went away keeps its start. Then over a real server: concurrent
createStarts, some refused, each answered as it would be alone."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from engine import Engine, StartCall, TreeNotFound, Trigger
from engine.server.start_batch import StartBatcher

from .conftest import TREES
from .live_server import DATABASES, FORM, Live, live_server, module_engine
from .support import REGISTRATION, race, refused_creator, registration_call, runs_stored

START_URL = "/kineticTask/rest/v1/Trigger/createStart"


class TickingClock:
    """A second later at every reading: starts written in one transaction share their time."""

    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def gathered(batcher: StartBatcher, calls: list[StartCall]) -> list[Trigger | BaseException]:
    """Every call's answer, awaited together on one event loop."""

    async def together() -> list[Trigger | BaseException]:
        return await asyncio.gather(
            *(batcher.create_start(call) for call in calls), return_exceptions=True
        )

    try:
        return asyncio.run(together())
    finally:
        batcher.close()


@pytest.fixture
def ticking(database_url: str) -> Iterator[Engine]:
    with Engine(database_url, trees=TREES, clock=TickingClock()) as engine:
        yield engine


def test_starts_awaited_together_are_written_a_batch_at_a_time(ticking: Engine) -> None:
    answers = gathered(
        StartBatcher(ticking, max_batch=4), [registration_call(f"s{n}") for n in range(10)]
    )

    assert all(isinstance(answer, Trigger) for answer in answers), answers
    triggers = [answer for answer in answers if isinstance(answer, Trigger)]
    # One clock reading a transaction: batches of 4, 4 and 2, in the order they were awaited.
    times = [trigger.created_at for trigger in triggers]
    assert [len(list(group)) for _, group in itertools.groupby(times)] == [4, 4, 2]
    assert times == sorted(times)
    assert [ticking.get_run(t.run_id).source_id for t in triggers] == [f"s{n}" for n in range(10)]


def test_a_refused_start_is_answered_alone_and_the_others_commit(ticking: Engine) -> None:
    before = runs_stored(ticking)
    unknown = StartCall(source_name="Nowhere", source_group="None", tree_name="Missing")

    first, refused, last = gathered(
        StartBatcher(ticking), [registration_call("a"), unknown, registration_call("b")]
    )

    assert isinstance(refused, TreeNotFound) and "Missing" in str(refused)
    assert isinstance(first, Trigger) and isinstance(last, Trigger)
    assert first.created_at == last.created_at  # one transaction
    assert runs_stored(ticking) == before + 2


def test_a_failed_batch_fails_each_of_its_requests_and_keeps_nothing(ticking: Engine) -> None:
    creator = refused_creator(ticking)
    before = runs_stored(ticking)

    answers = gathered(
        StartBatcher(ticking),
        [registration_call("a", created_by="fine"), registration_call("b", created_by=creator)],
    )

    assert [type(answer) for answer in answers] == [type(answers[0])] * 2
    assert all(isinstance(answer, sa.exc.DBAPIError) for answer in answers), answers
    assert runs_stored(ticking) == before


def test_a_start_whose_client_went_away_is_kept(ticking: Engine) -> None:
    batcher = StartBatcher(ticking)
    before = runs_stored(ticking)

    async def abandon_one() -> Trigger:
        abandoned = asyncio.ensure_future(batcher.create_start(registration_call("abandoned")))
        await asyncio.sleep(0)  # it waits for its batch
        await asyncio.sleep(0)  # its batch is in the accepting thread
        abandoned.cancel()
        return await batcher.create_start(registration_call("next"))  # after that batch

    try:
        answered = asyncio.run(abandon_one())
    finally:
        batcher.close()

    assert ticking.get_run(answered.run_id).source_id == "next"
    assert runs_stored(ticking) == before + 2
    with ticking.database.read() as connection:
        source_ids = connection.execute(sa.text("SELECT source_id FROM runs")).scalars().all()
    assert "abandoned" in source_ids


@pytest.fixture(scope="module", params=DATABASES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    with module_engine(request, tmp_path_factory) as engine, live_server(engine) as server:
        server.add_user("ada", "user")
        yield server


def test_concurrent_create_starts_are_each_answered_as_if_alone(live: Live) -> None:
    token = live.token("ada")
    before = runs_stored(live.engine)
    numbers = itertools.count()

    def call() -> tuple[int, str, str]:
        number = next(numbers)
        tree = "No Such Tree" if number % 4 == 0 else REGISTRATION["tree_name"]
        form = {**REGISTRATION, "tree_name": tree, "source_id": f"concurrent-{number}"}
        with live.client(token, Accept="application/json") as client:
            answer = client.post(START_URL, data=form, headers={"Content-Type": FORM})
        return answer.status_code, answer.text, form["source_id"]

    answers = race(24, call)

    assert all(isinstance(answer, tuple) for answer in answers), answers
    refused = [a for a in answers if isinstance(a, tuple) and a[0] != 200]
    accepted = [a for a in answers if isinstance(a, tuple) and a[0] == 200]
    assert len(refused) == 6 and len(accepted) == 18
    assert all(status == 400 and "No Such Tree" in text for status, text, _ in refused), refused
    trigger_ids = {
        source_id: int(json.loads(text)["result"]["id"]) for _, text, source_id in accepted
    }
    assert len(set(trigger_ids.values())) == 18
    assert runs_stored(live.engine) == before + 18
    for source_id, trigger_id in trigger_ids.items():
        assert (
            live.engine.get_run(live.engine.get_trigger(trigger_id).run_id).source_id == source_id
        )
