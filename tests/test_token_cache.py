"""The in-process cache of verified tokens: how long an entry lives and what forgets it.

Everything runs on the injected clock; nothing sleeps.
"""

from __future__ import annotations

import pytest

from engine.auth import TokenCache

from .live_server import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


def cache(clock: Clock, seconds: float = 2.0, **options: int) -> TokenCache[str]:
    return TokenCache(seconds=seconds, clock=clock, **options)


def test_an_entry_is_found_until_the_cache_period_ends(clock: Clock) -> None:
    tokens = cache(clock)
    tokens.put("h", "ada", expires_at=clock.now + 299, generation=tokens.generation)

    clock.advance(1.999)
    assert tokens.get("h") == "ada"
    clock.advance(0.001)
    assert tokens.get("h") is None
    assert len(tokens) == 0


def test_an_entry_never_outlives_its_tokens_expiry(clock: Clock) -> None:
    tokens = cache(clock, seconds=60)
    tokens.put("h", "ada", expires_at=clock.now + 1, generation=tokens.generation)

    clock.advance(0.5)
    assert tokens.get("h") == "ada"
    clock.advance(0.5)
    assert tokens.get("h") is None


def test_invalidating_forgets_every_entry(clock: Clock) -> None:
    tokens = cache(clock)
    for digest in ("a", "b"):
        tokens.put(digest, digest, expires_at=clock.now + 299, generation=tokens.generation)

    tokens.invalidate()

    assert (tokens.get("a"), tokens.get("b"), len(tokens)) == (None, None, 0)


def test_a_value_read_before_an_invalidation_is_not_stored_after_it(clock: Clock) -> None:
    tokens = cache(clock)
    generation = tokens.generation  # a check begins reading the database
    tokens.invalidate()  # meanwhile the user is rotated

    tokens.put("h", "ada", expires_at=clock.now + 299, generation=generation)

    assert tokens.get("h") is None
    tokens.put("h", "ada", expires_at=clock.now + 299, generation=tokens.generation)
    assert tokens.get("h") == "ada"


def test_the_oldest_entries_go_first_beyond_the_bound(clock: Clock) -> None:
    tokens = cache(clock, max_entries=2)
    for digest in ("a", "b", "c"):
        tokens.put(digest, digest, expires_at=clock.now + 299, generation=tokens.generation)

    assert [tokens.get(digest) for digest in ("a", "b", "c")] == [None, "b", "c"]


def test_a_period_of_zero_caches_nothing(clock: Clock) -> None:
    tokens = cache(clock, seconds=0)
    tokens.put("h", "ada", expires_at=clock.now + 299, generation=tokens.generation)

    assert (tokens.enabled, tokens.get("h"), len(tokens)) == (False, None, 0)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"seconds": -1}, r"^seconds must be 0 or more, not -1$"),
        ({"seconds": 1, "max_entries": 0}, r"^max_entries must be at least 1, not 0$"),
    ],
    ids=["negative-period", "no-room"],
)
def test_nonsense_settings_are_refused(clock: Clock, options: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TokenCache(clock=clock, **options)  # type: ignore[arg-type]
