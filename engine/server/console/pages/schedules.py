"""A stub for the console's Schedules page, which the console-pages branch replaces."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

__all__ = ["router"]
