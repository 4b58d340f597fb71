"""btc-lifecycle: the ML lifecycle on BTC/USDT minute candles as a Dagster asset graph."""

import os

# XGBoost's OpenMP threads spin while waiting; on two busy cores that made one fit 10-30x slower
# (measured). It must be set before the OpenMP runtime loads, hence here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
