"""The parity check on the online materialization: the features Feast serves, offline for
training and online for scoring, are the features table's, value for value."""

import dagster as dg
import pandas as pd

from btc_lifecycle.adapters.feature_store import read_features
from btc_lifecycle.config import Settings
from btc_lifecycle.defs.checks_support import judged_window
from btc_lifecycle.defs.serving.assets import feast_online_features
from btc_lifecycle.resources import FeatureStoreResource
from btc_lifecycle.resources.feast_store import FeastStoreResource

# Feast's point-in-time join grows with the rows: judged on the newest days written, not a whole
# backfill; the tests hold it on whole histories.
PARITY_DAYS = 2


@dg.asset_check(
    asset=feast_online_features,
    blocking=True,
    pool="duckdb",
    description="Training/offline: Feast's training set for the trainable candles of the newest days written equals "
    "the features table, value for value. Online/offline: the online candle is the newest exported one and its "
    "features equal the table's and the offline store's.",
)
def feast_features_match_the_features_table(
    context: dg.AssetCheckExecutionContext,
    feature_store: FeatureStoreResource,
    feast_store: FeastStoreResource,
    settings: dg.ResourceParam[Settings],
) -> dg.AssetCheckResult:
    from btc_lifecycle.adapters.feast_repo import last_exported_open_time, parities

    series = settings.ingest.series
    newest = last_exported_open_time(feast_store.repository())
    with feature_store.get_connection() as conn:
        start, end = judged_window(context, conn, series)
        start = max(start, end - pd.Timedelta(days=PARITY_DAYS))
        table = read_features(conn, series, start=start)
        # The online candle is the newest one, whichever days this run wrote.
        newest_rows = read_features(conn, series, start=newest) if newest is not None else table.iloc[:0]
    table = table.loc[table["open_time"] < end].reset_index(drop=True)
    training, online = parities(settings, table, newest_rows)
    passed = training.passed and online.passed
    failed = [outcome.description for outcome in (training, online) if not outcome.passed]
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=" ".join(failed) if failed else f"{training.description} {online.description}",
        metadata={
            "judged_from": start.isoformat(),
            "judged_until": end.isoformat(),
            **{f"training_{key}": value for key, value in training.metadata.items()},
            **{f"online_{key}": value for key, value in online.metadata.items()},
        },
    )
