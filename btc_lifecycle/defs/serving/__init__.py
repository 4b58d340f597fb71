"""Serving assets: the Feast repository fed from the features table (offline Parquet per day,
the newest closed candle online) and the parity check that ties both to the table."""
