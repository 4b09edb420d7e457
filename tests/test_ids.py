"""The engine's own identifiers: claim ids never repeat, in threads or in a forked child."""

from __future__ import annotations

import multiprocessing
import threading

from engine import ids

PER_THREAD = 5_000


def _claim_ids(count: int) -> list[str]:
    return [ids.claim_id() for _ in range(count)]


def test_claim_ids_made_by_racing_threads_are_all_different() -> None:
    made: list[list[str]] = []
    threads = [
        threading.Thread(target=lambda: made.append(_claim_ids(PER_THREAD))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [claim for batch in made for claim in batch]
    assert len(every) == 4 * PER_THREAD
    assert len(set(every)) == len(every)


def test_a_forked_child_makes_claim_ids_of_its_own() -> None:
    before = _claim_ids(100)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply(_claim_ids, (100,))
    after = _claim_ids(100)
    assert len(set(child)) == 100
    assert not set(child) & set(before + after)
    assert not {claim[:14] for claim in child} & {claim[:14] for claim in before}


def test_row_ids_made_in_a_row_sort_in_the_order_they_were_made() -> None:
    made = [ids.row_id() for _ in range(10_000)]
    assert sorted(made) == made
    assert len(set(made)) == len(made)
