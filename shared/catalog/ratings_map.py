"""Content ratings (MPAA and US TV Parental Guidelines) mapped onto the profiles' one ordered scale."""

from __future__ import annotations

from typing import Literal

RatingSystem = Literal["mpaa", "tv"]

# The scale profiles use ('all' < '7+' < '13+' < '16+' < '18+'), see shared/profiles/schemas.py.
RATINGS: dict[RatingSystem, dict[str, str]] = {
    "mpaa": {"G": "all", "PG": "7+", "PG-13": "13+", "R": "16+", "NC-17": "18+", "NR": "18+"},
    "tv": {
        "TV-Y": "all",
        "TV-G": "all",
        "TV-Y7": "7+",
        "TV-Y7-FV": "7+",
        "TV-PG": "7+",
        "TV-14": "13+",
        "TV-MA": "18+",
    },
}


def maturity_for(system: RatingSystem, rating: str) -> str:
    """The scale level of a rating; ValueError naming the accepted ratings when it is unknown."""
    table = RATINGS[system]
    level = table.get(rating.strip().upper())
    if level is None:
        raise ValueError(f"unknown {system} rating {rating!r}; expected one of {', '.join(table)}")
    return level
