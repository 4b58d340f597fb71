"""The exchange as a Dagster resource: any ccxt exchange, or a host that speaks its API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dagster import ConfigurableResource
from pydantic import Field

from btc_lifecycle.config import Settings

if TYPE_CHECKING:
    from btc_lifecycle.adapters.archives import ArchiveSource
    from btc_lifecycle.adapters.exchange import CandleClient, Log


class CandleExchangeResource(ConfigurableResource):
    """A spot exchange through ccxt, binance by default; ``api_url`` sends it to another host (the
    replay exchange)."""

    exchange_id: str = "binance"
    api_url: str | None = Field(
        default=None, description="host that speaks the exchange's API (the replay speaks Binance's); None: live"
    )
    replay_file: str | None = Field(default=None, description="candle file the replay exchange serves")
    archive_url: str | None = Field(
        default=None, description="Binance's kline archives (host or folder) for days before yesterday; None: API only"
    )
    timeout_seconds: float = 10.0
    max_retries: int = 5
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> CandleExchangeResource:
        ingest = settings.ingest
        return cls(
            exchange_id=ingest.exchange,
            api_url=settings.binance_api_url,
            replay_file=str(settings.replay_file) if settings.replay_file else None,
            archive_url=settings.archive_url,
            timeout_seconds=ingest.request_timeout_seconds,
            max_retries=ingest.max_retries,
            retry_initial_seconds=ingest.retry_initial_seconds,
            retry_max_seconds=ingest.retry_max_seconds,
        )

    @property
    def source(self) -> str:
        """Where the main market's candles come from, as the ingestion stats record it."""
        if self.api_url is None:
            return f"{self.exchange_id} (live)"
        if self.replay_file:
            return f"replay of {self.replay_file} ({self.exchange_id} API at {self.api_url})"
        return f"{self.exchange_id} API at {self.api_url}"

    def source_of(self, exchange_id: str) -> str:
        """Where a further market's candles on ``exchange_id`` come from (the replay file is the main market's)."""
        return f"{exchange_id} (live)" if self.api_url is None else f"{exchange_id} API at {self.api_url}"

    def client(self, log: Log, exchange_id: str | None = None) -> CandleClient:
        """A candle client for ``exchange_id`` (None: this resource's) with these connection settings."""
        # Imported here: ccxt loads every exchange it knows, and the code location is
        # loaded by every Dagster process, most of which never fetch a candle.
        from btc_lifecycle.adapters.exchange import CandleClient, RetryPolicy, make_ccxt_client

        exchange = make_ccxt_client(exchange_id or self.exchange_id, self.api_url, self.timeout_seconds)
        policy = RetryPolicy(self.max_retries, self.retry_initial_seconds, self.retry_max_seconds)
        return CandleClient(exchange, policy, log)

    def archives(self, exchange_id: str | None = None) -> ArchiveSource | None:
        """The kline archives, with the exchange's timeout and retry policy; None when off, or for
        an exchange other than binance (data.binance.vision holds binance.com's candles only)."""
        if self.archive_url is None or (exchange_id or self.exchange_id) != "binance":
            return None
        from btc_lifecycle.adapters.archives import ArchiveSource
        from btc_lifecycle.adapters.exchange import RetryPolicy

        policy = RetryPolicy(self.max_retries, self.retry_initial_seconds, self.retry_max_seconds)
        return ArchiveSource(self.archive_url, self.timeout_seconds, policy)
