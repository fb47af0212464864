"""Who is looking, and the one SQL condition that hides what they may not see (browse, search, detail)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.profiles.schemas import MATURITY_LEVELS

MAX_RANK = len(MATURITY_LEVELS) - 1  # '18+', the top of the profiles' scale


@dataclass(frozen=True)
class Viewer:
    """The caller as the catalog sees them: country, the active profile's maturity, and staff status."""

    country: str | None = None
    max_rank: int = MAX_RANK
    manager: bool = False
    user_id: uuid.UUID | None = None
    profile_id: uuid.UUID | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def cache_key(self) -> str:
        """What a shared response cache must vary on (identical for every viewer of the same kind)."""
        return f"{self.country or '-'}:{self.max_rank}:{int(self.manager)}"

    def params(self) -> dict[str, Any]:
        """The named parameters VISIBLE_SQL uses."""
        return {
            "v_country": self.country,
            "v_rank": self.max_rank,
            "v_manager": self.manager,
            "v_at": self.at,
        }


# Use as `where ... and {VISIBLE_SQL.format(t="t")}` with Viewer.params(): a title is shown when it is not
# deleted and, unless the viewer manages the catalog, it is live (published, or scheduled and due), inside
# its availability window, allowed in the viewer's country (an unknown country sees only titles without an
# allow list) and within the profile's maturity. Content managers see every title that is not deleted.
VISIBLE_SQL = """({t}.deleted_at is null and (%(v_manager)s or (
    ({t}.status = 'published' or ({t}.status = 'scheduled' and {t}.publish_at <= %(v_at)s))
    and ({t}.available_from is null or {t}.available_from <= %(v_at)s)
    and ({t}.available_until is null or {t}.available_until > %(v_at)s)
    and (cardinality({t}.country_allow) = 0 or %(v_country)s::text = any({t}.country_allow))
    and not (coalesce(%(v_country)s::text = any({t}.country_deny), false))
    and {t}.maturity_rank <= %(v_rank)s)))"""


def visible_sql(alias: str = "t") -> str:
    """VISIBLE_SQL for a table alias."""
    if not alias.isidentifier():
        raise ValueError("alias must be an identifier")
    return VISIBLE_SQL.format(t=alias)
