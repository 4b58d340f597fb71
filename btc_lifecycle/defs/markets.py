"""Where each configured market's assets live in the graph.

The main market (the config file's top-level exchange, symbol and interval) keeps the plain keys
(``raw_candles``) and the stage groups (``ingestion``): the model, the reports and the serving are
about it, and an instance's history stays with it when markets are added. Each market of
``more_markets`` gets the same ingestion assets and checks under its slug
(``binanceus_btc_usd_1m/raw_candles``), in one group named after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from btc_lifecycle.config import Settings
from btc_lifecycle.domain.candles import Market


@dataclass(frozen=True)
class MarketAssets:
    """One market and the names its assets take."""

    market: Market
    main: bool

    @property
    def key_prefix(self) -> list[str]:
        return [] if self.main else [self.market.slug]

    def key(self, name: str) -> dg.AssetKey:
        return dg.AssetKey([*self.key_prefix, name])

    def group(self, stage: str) -> str:
        return stage if self.main else self.market.slug

    def placed(self, stage: str) -> dict[str, object]:
        """``dg.asset``'s key prefix and group for this market's asset of the ``stage`` group."""
        return {"key_prefix": self.key_prefix, "group_name": self.group(stage)}


def main_market(settings: Settings) -> MarketAssets:
    return MarketAssets(settings.ingest.market, main=True)


def all_markets(settings: Settings) -> list[MarketAssets]:
    """The main market, then ``more_markets`` in the config's order."""
    main, *more = settings.ingest.markets
    return [MarketAssets(main, main=True), *(MarketAssets(market, main=False) for market in more)]
