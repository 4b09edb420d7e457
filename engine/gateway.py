"""The one door from a node's handler back into its engine (``HandlerContext.triggers``).

A handler that defers, or that makes schedules, needs a little of the engine and no more: this gives
it ``create_deferred`` and ``create_schedule`` (the :class:`~engine.handlers.handler.TriggerGateway`
protocol) and answers with receipts, not the engine's records, so handlers depend on
``engine.handlers.handler`` alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.handlers.handler import ScheduleReceipt, TriggerReceipt

if TYPE_CHECKING:
    from engine.engine import Engine


class EngineGateway:
    """What handlers may ask of the engine: Complete / Update triggers, and schedules."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create_deferred(
        self,
        *,
        token: str,
        action: str,
        results: str | None,
        message: str | None,
        idempotency_key: str | None,
    ) -> TriggerReceipt:
        trigger = self._engine.create_deferred(
            token=token,
            action=action,
            results=results,
            message=message,
            idempotency_key=idempotency_key,
        )
        return TriggerReceipt(trigger_id=trigger.id, run_id=trigger.run_id)

    def create_schedule(self, *, creation_key: str, **fields: Any) -> ScheduleReceipt:
        """A schedule made by a tree's node, keyed by its task so that a retry finds it."""
        schedule = self._engine.schedules.create(**fields, creation_key=creation_key)
        return ScheduleReceipt(schedule_id=schedule.id, next_fire_time=schedule.next_fire_time)


__all__ = ["EngineGateway"]
