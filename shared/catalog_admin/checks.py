"""Field errors with stable codes, and the cross-field rules of a title checked on its merged state."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared.catalog.ratings_map import RATINGS, maturity_for
from shared.errors import AppError, ValidationFailed


@dataclass(frozen=True)
class FieldError:
    """One problem: the field (dotted path, "" for the whole entity), a stable code and a message."""

    field: str
    code: str
    message: str
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


class InvalidFields(ValidationFailed):
    """422 validation_failed with errors[] shaped like the framework's ({loc, msg, type})."""

    def __init__(self, problems: list[FieldError]) -> None:
        self.problems = problems
        errors = [
            {"loc": ["body", *p.field.split(".")] if p.field else ["body"], "msg": p.message, "type": p.code}
            | p.extra
            for p in problems
        ]
        detail = "; ".join(f"{p.field or 'body'}: {p.message}" for p in problems)
        super().__init__(detail, errors=errors)


def field_errors(error: AppError) -> list[FieldError]:
    """Any of our errors as field errors (conflicts name their field in `field`)."""
    if isinstance(error, InvalidFields):
        return list(error.problems)
    return [FieldError(str(error.extra.get("field", "")), error.code, error.detail)]


def pydantic_errors(errors: list[Any]) -> list[FieldError]:
    """Pydantic's error list as field errors (loc joined with dots)."""
    return [
        FieldError(".".join(str(part) for part in error["loc"]), error["type"], error["msg"])
        for error in errors
    ]


def check_title(state: dict[str, Any], *, changed: set[str], now: datetime) -> dict[str, Any]:
    """Validate a title's merged state; return the derived columns (maturity, year). Raises InvalidFields."""
    problems: list[FieldError] = []
    derived: dict[str, Any] = {}

    system, rating = state.get("rating_system"), state.get("rating")
    if rating is not None and system is None:
        problems.append(
            FieldError("rating_system", "rating_system_required", "give the rating's system: mpaa or tv")
        )
    elif system is not None and rating is None:
        problems.append(FieldError("rating", "rating_required", f"give a {system} rating"))
    elif system is not None and rating is not None:
        try:
            level = maturity_for(system, rating)
        except ValueError:
            accepted = list(RATINGS[system])
            problems.append(
                FieldError(
                    "rating",
                    "unknown_rating",
                    f"unknown {system} rating {rating!r}; accepted: {', '.join(accepted)}",
                    {"accepted": accepted},
                )
            )
        else:
            if "maturity_level" in changed and state.get("maturity_level") not in (None, level):
                problems.append(
                    FieldError(
                        "maturity_level",
                        "maturity_from_rating",
                        f"the maturity level comes from the rating ({rating} is {level}); leave it out",
                    )
                )
            derived["maturity_level"] = level

    release_date: date | None = state.get("release_date")
    if release_date is not None:
        year = state.get("release_year")
        if year is not None and year != release_date.year and "release_year" in changed:
            problems.append(
                FieldError(
                    "release_year",
                    "release_year_mismatch",
                    f"release_year {year} differs from the release_date's year {release_date.year}",
                )
            )
        derived["release_year"] = release_date.year

    start, end = state.get("available_from"), state.get("available_until")
    if start is not None and end is not None and end <= start:
        problems.append(
            FieldError("available_until", "invalid_window", "available_until must be after available_from")
        )

    both = sorted(set(state.get("country_allow") or ()) & set(state.get("country_deny") or ()))
    if both:
        problems.append(
            FieldError(
                "country_deny", "country_conflict", f"in both the allow and the deny list: {', '.join(both)}"
            )
        )

    problems += check_schedule(state, changed=changed, now=now)
    if problems:
        raise InvalidFields(problems)
    return derived


def check_schedule(state: dict[str, Any], *, changed: set[str], now: datetime) -> list[FieldError]:
    """`scheduled` needs a future publish_at; other states carry none."""
    status, publish_at = state.get("status", "draft"), state.get("publish_at")
    if status == "scheduled":
        if publish_at is None:
            return [FieldError("publish_at", "publish_at_required", "a scheduled title needs publish_at")]
        # Checked when the schedule is being set: a title scheduled earlier may be live by now.
        if changed & {"status", "publish_at"} and publish_at <= now:
            return [FieldError("publish_at", "publish_at_in_past", "publish_at must be in the future")]
    elif publish_at is not None and "publish_at" in changed:
        return [
            FieldError("publish_at", "publish_at_not_scheduled", "publish_at is only for status 'scheduled'")
        ]
    return []
