"""Gap-policy study: how much of a thin venue's history is trainable for each ``max_fill_minutes``.

A complete candle file is thinned into what a thin venue would have printed (``thin_venue_candles``:
Poisson trades whose rate follows the minute's volume, candles rebuilt from the trades), for a few
no-trade shares and seeds, with a maintenance outage cut into the middle; then the features are
computed for each gap limit K and the trainable rows counted. docs/ml-method.md holds the numbers.

    python -m btc_lifecycle.modelling.gap_study --candles FILE [--shares 0.55 0.62 0.7] [--seeds 1 2 3]
        [--outage-minutes 180] [--train 0 10 30 60]
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import pandas as pd

from btc_lifecycle.domain.candle_files import read_candle_file
from btc_lifecycle.domain.candles import find_gaps
from btc_lifecycle.domain.gaps import FILLED_COLUMN, gap_fill_summary
from btc_lifecycle.domain.synthetic import synthetic_candles, thin_venue_candles, without_minutes
from btc_lifecycle.modelling.features import TRAINABLE_COLUMN, compute_features, training_exclusions

LIMITS = (0, 1, 2, 3, 5, 10, 15, 20, 30, 45, 60, 90, 120)


def thinned(candles: pd.DataFrame, no_trade_share: float, seed: int, outage_minutes: int) -> pd.DataFrame:
    """The thin venue's candles, with an exchange outage of ``outage_minutes`` in the middle."""
    thin = thin_venue_candles(candles, no_trade_share, seed=seed)
    if outage_minutes <= 0:
        return thin
    middle = candles["open_time"].iloc[len(candles) // 2]
    outage = (thin["open_time"] >= middle) & (thin["open_time"] < middle + pd.Timedelta(minutes=outage_minutes))
    return without_minutes(thin, np.flatnonzero(outage.to_numpy()))


def trainable_by_limit(thin: pd.DataFrame, minutes: int, limits=LIMITS) -> pd.DataFrame:
    """One row per gap limit K: rows, trainable rows (also as a share of all ``minutes``), the
    share of trainable rows that are filled minutes, the share of gaps filled, and what stays
    excluded and why."""
    rows = []
    for limit in limits:
        features = compute_features(thin, "1m", limit)
        trainable = features[TRAINABLE_COLUMN].to_numpy()
        policy = gap_fill_summary(thin["open_time"], "1m", limit)
        rows.append(
            {
                "K": limit,
                "gaps_filled_share": policy.gaps_filled / max(1, policy.gaps_filled + policy.gaps_left_open),
                "rows": len(features),
                "trainable": int(trainable.sum()),
                "trainable_share": trainable.sum() / minutes,
                "filled_share_of_trainable": (
                    float(features.loc[trainable, FILLED_COLUMN].mean()) if trainable.any() else np.nan
                ),
                **training_exclusions(features, "1m"),
            }
        )
    return pd.DataFrame(rows)


def gap_lengths(thin: pd.DataFrame) -> np.ndarray:
    return np.array([gap.missing for gap in find_gaps(thin["open_time"], "1m")])


def walk_forward_numbers(thin: pd.DataFrame, limits) -> pd.DataFrame:
    """Walk-forward ROC AUC and log loss of the model and the prior baseline for some K."""
    from btc_lifecycle.modelling.walk_forward import WalkForwardConfig, train_walk_forward

    config = replace(WalkForwardConfig(), n_jobs=1)
    rows = []
    for limit in limits:
        features = compute_features(thin, "1m", limit)
        try:
            result = train_walk_forward(features, config)
        except ValueError as error:
            rows.append({"K": limit, "error": str(error)[:80]})
            continue
        rows.append(
            {
                "K": limit,
                "trainable": result.row_counts["trainable"],
                "xgboost_auc": result.overall["xgboost"].roc_auc,
                "xgboost_log_loss": result.overall["xgboost"].log_loss,
                "prior_log_loss": result.overall["prior"].log_loss,
                "heldout_auc": result.heldout_metrics["xgboost"].roc_auc,
            }
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candles", help="a complete 1m candle file to thin; default: 21 generated days")
    parser.add_argument("--shares", type=float, nargs="+", default=[0.55, 0.62, 0.70])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--outage-minutes", type=int, default=180)
    parser.add_argument(
        "--train",
        type=int,
        nargs="*",
        default=[],
        metavar="K",
        help="also train walk-forward for these K (first share and seed)",
    )
    args = parser.parse_args(argv)
    candles = read_candle_file(args.candles) if args.candles else synthetic_candles(21 * 1440, seed=5)
    minutes = len(candles)
    pd.set_option("display.width", 200)
    tables = []
    for share in args.shares:
        for seed in args.seeds:
            thin = thinned(candles, share, seed, args.outage_minutes)
            lengths = gap_lengths(thin)
            print(
                f"no-trade share {share:.2f}, seed {seed}: {len(thin):,} candles of {minutes:,} minutes "
                f"({1 - len(thin) / minutes:.1%} missing); {len(lengths):,} gaps, length median "
                f"{np.median(lengths):.0f}, p90 {np.quantile(lengths, 0.9):.0f}, p99 "
                f"{np.quantile(lengths, 0.99):.0f}, max {lengths.max()}"
            )
            tables.append(trainable_by_limit(thin, minutes).assign(share=share, seed=seed))
    table = pd.concat(tables, ignore_index=True)
    summary = table.groupby("K").agg(
        trainable_share_min=("trainable_share", "min"),
        trainable_share_mean=("trainable_share", "mean"),
        gaps_filled_share_min=("gaps_filled_share", "min"),
        filled_share_of_trainable=("filled_share_of_trainable", "mean"),
        excluded_after_gap_mean=("incomplete_window_after_gap", "mean"),
    )
    print("\ntrainable rows as a share of all minutes, over every share and seed:")
    print(summary.round(3).to_string())
    for share in args.shares:
        print(f"\nno-trade share {share:.2f}, trainable share by K (mean over seeds):")
        print(table.loc[table["share"] == share].groupby("K")["trainable_share"].mean().round(3).to_string())
    if args.train:
        thin = thinned(candles, args.shares[0], args.seeds[0], args.outage_minutes)
        print(f"\nwalk-forward on no-trade share {args.shares[0]}, seed {args.seeds[0]}:")
        print(walk_forward_numbers(thin, args.train).round(4).to_string(index=False))


if __name__ == "__main__":
    main()
