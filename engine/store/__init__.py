"""Persistence: SQLModel tables on SQLite or PostgreSQL, the trigger queue, runs and trees."""

from engine.store.database import Database

__all__ = ["Database"]
