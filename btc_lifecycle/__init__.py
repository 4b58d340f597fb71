"""btc-lifecycle: the ML lifecycle on BTC/USDT minute candles as a Dagster asset graph."""
