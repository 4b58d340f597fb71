"""What a run knows about the candles it reports on, beyond the frame itself.

Its own module: the report's sections and the report builder both read it, and neither needs
the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from btc_lifecycle.domain.candles import Gap
from btc_lifecycle.domain.gaps import GapFillSummary


@dataclass(frozen=True)
class ReportFacts:
    """What the run knows that the frame does not: where the candles came from and so on."""

    source: str
    symbol: str
    interval: str
    rows_new: int
    rows_total: int
    missing_minutes: int
    gaps: list[Gap]
    generated_at: datetime
    # What the model's gap policy (features.max_fill_minutes) makes of these gaps; None: not shown.
    gap_policy: GapFillSummary | None = None
