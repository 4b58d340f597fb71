"""The Dagster layer, one folder per domain: assets, checks, jobs, schedules and sensors.

``btc_lifecycle.definitions.build_definitions`` assembles them from the settings.
"""

import warnings

import dagster as dg

# Single-run backfills (``backfill_policy``) and the next day's optional first candle
# (``allow_nonexistent_upstream_partitions``) are marked beta in Dagster; the project relies on
# both on purpose, so their notes would only be noise on every load.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
