"""Health report shapes (close to the draft 'application/health+json' format)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class CheckResult(BaseModel):
    """One dependency's state."""

    status: Literal["pass", "fail"]
    latency_ms: float
    backend: str
    detail: str | None = None
    info: dict[str, Any] = {}


class HealthReport(BaseModel):
    """The whole platform's state; `down` names what failed."""

    status: Literal["pass", "fail"]
    version: str
    down: list[str]
    checks: dict[str, CheckResult]
