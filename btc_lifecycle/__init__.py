"""btc-lifecycle: the ML lifecycle on BTC/USDT minute candles as a Dagster asset graph."""

import os

# XGBoost's OpenMP threads spin while waiting, which slows a fit many times over on busy cores.
# It must be set before the OpenMP runtime loads, hence here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
