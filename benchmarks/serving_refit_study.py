"""Serving study: after a promotion, should the validated model serve, or a refit on all data?

For many origins T (every ``--every-hours`` from ``--first-day`` on), the store holds every candle
before T (expanding window, as in production). Three models are trained at each T and scored on
the candles the model would serve next, T to T + 6 / 12 / 24 hours:

- **A, validated**: what ``train_walk_forward`` registers today: fitted on the rows before the
  held-out window (the last ``heldout_fraction`` of the history) minus the embargo, early stopping
  on the embargoed tail of those rows (``walk_forward._training_rows`` and ``_fit_xgboost``, the
  production code itself).
- **B, refit, fixed trees**: the same hyperparameters (A's ``get_params``), fitted on every
  trainable row up to T minus the embargo, with no early stopping and A's number of trees
  (``best_iteration + 1``). The newest rows go into the trees, and the model is as complex as the
  one that was validated.
- **B', refit, early stopped**: production's own fit (``_fit_xgboost``) on every trainable row up
  to T minus the embargo. Early stopping holds out the newest 15 % of those rows, so its trees are
  fitted on rows up to about 85 % of the history and the newest rows only pick the tree count;
  reported for completeness.

The constant prior (up share of the training rows) is scored on the same candles. All scored
rows start at T, at least ``LONGEST_WINDOW + 1`` candles after any row B trained on. Log-loss
differences get 95 % intervals from two block bootstraps: over origins (moving blocks of
``--origin-block`` consecutive origins, because neighbouring origins share most of their training
data and, at 24 h, their candles) and over candles (calendar blocks of ``--candle-block-minutes``;
every origin's rows of a block move together).

Then the promotion gate (``champion.decide_promotion``) is replayed at every retraining: the
challenger A of origin i+1 on its held-out window against the model of origin i as champion,
once with A and once with B in that role, to show what a refit champion does to the gate. The
first seed of ``--seeds`` (production's ``random_state`` 7) gets the full tables; the others a
line per horizon, to show how much of a difference is the XGBoost seed.

    python -m benchmarks.serving_refit_study --candles FILE [--first-day 3] [--every-hours 12] \
        [--horizons 6,12,24] [--seeds 7,1,2,3,4] [--json OUT]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

# XGBoost's OpenMP threads spin-wait on a shared machine unless told otherwise (see training.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from xgboost import XGBClassifier  # noqa: E402

from benchmarks.harness import DEFAULT_CANDLES, say  # noqa: E402
from btc_lifecycle.config import ModelConfig  # noqa: E402
from btc_lifecycle.domain.candle_files import read_candle_file  # noqa: E402
from btc_lifecycle.domain.candles import interval_ms  # noqa: E402
from btc_lifecycle.modelling import walk_forward
from btc_lifecycle.modelling.champion import decide_promotion  # noqa: E402
from btc_lifecycle.modelling.features import (  # noqa: E402
    FEATURE_COLUMNS,
    TARGET_COLUMN,
    TRAINABLE_COLUMN,
    compute_features,
)
from btc_lifecycle.modelling.walk_forward import WalkForwardConfig, predict_up_probability  # noqa: E402

INTERVAL = "1m"
MODELS = ("validated", "refit_fixed", "refit_early_stopped", "prior_all", "prior_validated")
LABELS = {
    "validated": "A validated (production)",
    "refit_fixed": "B refit, A's tree count",
    "refit_early_stopped": "B' refit, early stopped",
    "prior_all": "prior, all rows before T",
    "prior_validated": "prior, A's training rows",
}
REFITS = ("refit_fixed", "refit_early_stopped")
BOOTSTRAP_REPLICATES = 10_000
SEED = 20230310


@dataclass
class Origin:
    """One retraining moment T: the models' sizes and every served candle's loss per model."""

    time: pd.Timestamp
    history_rows: int
    heldout_rows: int
    validated_rows: int
    refit_rows: int
    trees: int  # A's best_iteration + 1: what B is given
    refit_early_stopped_trees: int
    heldout_log_loss: float  # A on its own held-out window: the number recorded on the version
    served_times: pd.DatetimeIndex = field(repr=False)
    target: np.ndarray = field(repr=False)
    probability: dict[str, np.ndarray] = field(repr=False)
    models: dict[str, XGBClassifier] = field(repr=False, default_factory=dict)
    refit_until: pd.Timestamp | None = None  # B's last training row
    heldout: pd.DataFrame | None = field(repr=False, default=None)  # A's held-out rows: the gate's window
    prior_validated: float = float("nan")  # up share of A's training rows: the gate's constant prior


def log_losses(target: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """Per-candle log loss, clipped as sklearn's ``log_loss`` clips."""
    eps = np.finfo(np.float64).eps
    p = np.clip(probability, eps, 1 - eps)
    return -(target * np.log(p) + (1 - target) * np.log(1 - p))


def history_before(features: pd.DataFrame, origin: pd.Timestamp) -> pd.DataFrame:
    """What the store holds at T: candles before T. The last one's target is candle T's direction,
    not known until T closes, so it cannot train."""
    history = features.loc[features["open_time"] < origin].reset_index(drop=True)
    history.loc[len(history) - 1, TRAINABLE_COLUMN] = False
    return history


def fixed_tree_refit(validated: XGBClassifier, train: pd.DataFrame, trees: int) -> XGBClassifier:
    """A's hyperparameters, ``trees`` trees, no early stopping, fitted on all of ``train``."""
    params = validated.get_params()
    params.update(n_estimators=trees, early_stopping_rounds=None)
    model = XGBClassifier(**params)
    model.fit(train[list(FEATURE_COLUMNS)], train[TARGET_COLUMN].to_numpy(dtype="int64"), verbose=False)
    return model


def tree_count(model: XGBClassifier) -> int:
    best = getattr(model, "best_iteration", None)
    return int(best) + 1 if best is not None else int(model.get_params()["n_estimators"])


def study_origin(
    features: pd.DataFrame, origin: pd.Timestamp, longest_horizon: pd.Timedelta, config: WalkForwardConfig
) -> Origin:
    history = history_before(features, origin)
    trainable = history[TRAINABLE_COLUMN].to_numpy(dtype=bool)
    embargo = pd.Timedelta(milliseconds=interval_ms(config.interval)) * config.embargo_candles

    # A: the final model of train_walk_forward, step for step.
    heldout_candles = max(1, int(np.ceil(len(history) * config.heldout_fraction)))
    heldout_start = history["open_time"].iloc[len(history) - heldout_candles]
    validated_train = walk_forward._training_rows(history, trainable, heldout_start, embargo, config)
    validated = walk_forward._fit_xgboost(validated_train, embargo, config)
    heldout = history.loc[(history["open_time"] >= heldout_start).to_numpy() & trainable]
    heldout_log_loss = float(
        log_losses(heldout[TARGET_COLUMN].to_numpy(dtype="float64"), predict_up_probability(validated, heldout)).mean()
    )

    # B and B': every trainable row that ends one embargo before the first served candle.
    refit_train = walk_forward._training_rows(history, trainable, origin, embargo, config)
    trees = tree_count(validated)
    refit_fixed = fixed_tree_refit(validated, refit_train, trees)
    refit_early_stopped = walk_forward._fit_xgboost(refit_train, embargo, config)

    times = features["open_time"]
    served = features.loc[
        ((times >= origin) & (times < origin + longest_horizon)).to_numpy()
        & features[TRAINABLE_COLUMN].to_numpy(dtype=bool)
    ]
    rows = len(served)
    return Origin(
        time=origin,
        history_rows=len(history),
        heldout_rows=len(heldout),
        validated_rows=len(validated_train),
        refit_rows=len(refit_train),
        trees=trees,
        refit_early_stopped_trees=tree_count(refit_early_stopped),
        heldout_log_loss=heldout_log_loss,
        served_times=pd.DatetimeIndex(served["open_time"]),
        target=served[TARGET_COLUMN].to_numpy(dtype="float64"),
        probability={
            "validated": predict_up_probability(validated, served),
            "refit_fixed": predict_up_probability(refit_fixed, served),
            "refit_early_stopped": predict_up_probability(refit_early_stopped, served),
            "prior_all": np.full(rows, refit_train[TARGET_COLUMN].astype("float64").mean()),
            "prior_validated": np.full(rows, validated_train[TARGET_COLUMN].astype("float64").mean()),
        },
        models={"validated": validated, "refit_fixed": refit_fixed},
        refit_until=refit_train["open_time"].iloc[-1],
        heldout=heldout,
        prior_validated=float(validated_train[TARGET_COLUMN].astype("float64").mean()),
    )


def check_against_production(features: pd.DataFrame, origin: Origin, config: WalkForwardConfig) -> float:
    """Largest difference between A's served probabilities and train_walk_forward's own model's."""
    result = walk_forward.train_walk_forward(history_before(features, origin.time), config)
    served = features.set_index("open_time").loc[origin.served_times].reset_index()
    return float(np.max(np.abs(predict_up_probability(result.model, served) - origin.probability["validated"])))


@dataclass
class GateSummary:
    """Each origin's challenger A against the previous origin's model as champion, on the
    challenger's held-out window: what the promotion gate would see with A or with B as champion."""

    pairs: int
    alpha: float
    margin: float
    in_sample_share: float  # mean share of the gate window the refit champion trained on
    gate_difference: float  # mean over pairs of champion B - champion A on the gate window
    served_difference: float  # mean over pairs of B - A on the candles served until the next origin
    promoted_over_validated: int | None = None
    promoted_over_refit: int | None = None
    note: str = ""


def gate_study(origins: list[Origin], alpha: float, margin: float) -> GateSummary:
    in_sample, gate, served, decisions = [], [], [], {"validated": 0, "refit_fixed": 0}
    note = ""
    for champion, challenger in itertools.pairwise(origins):
        window = challenger.heldout
        target = window[TARGET_COLUMN].to_numpy(dtype="float64")
        losses = {
            name: log_losses(target, predict_up_probability(model, window)) for name, model in champion.models.items()
        }
        in_sample.append(float((window["open_time"] <= champion.refit_until).mean()))
        gate.append(float(losses["refit_fixed"].mean() - losses["validated"].mean()))
        until = np.asarray(champion.served_times < challenger.time)
        served.append(
            float(
                log_losses(champion.target[until], champion.probability["refit_fixed"][until]).mean()
                - log_losses(champion.target[until], champion.probability["validated"][until]).mean()
            )
        )
        challenger_losses = log_losses(target, predict_up_probability(challenger.models["validated"], window))
        prior_losses = log_losses(target, np.full(len(target), challenger.prior_validated))
        for name in decisions:
            try:
                decisions[name] += bool(
                    decide_promotion(challenger_losses, losses[name], prior_losses, alpha, margin).promote
                )
            except (TypeError, ValueError) as error:  # the gate's signature moved under the study
                note = f"promotion counts skipped: decide_promotion raised {error!r}"
    summary = GateSummary(
        len(origins) - 1,
        alpha,
        margin,
        float(np.mean(in_sample)),
        float(np.mean(gate)),
        float(np.mean(served)),
        note=note,
    )
    if not note:
        summary.promoted_over_validated = decisions["validated"]
        summary.promoted_over_refit = decisions["refit_fixed"]
    return summary


def gate_text(gate: GateSummary) -> str:
    lines = [
        f"promotion gate, {gate.pairs} retrainings (challenger = A of origin i+1 on its held-out window, "
        f"champion = a model of origin i; alpha {gate.alpha}, margin {gate.margin}):",
        f"  share of that window the refit champion B had trained on (mean): {gate.in_sample_share:.0%}",
        f"  champion B - champion A on that window: {gate.gate_difference:+.5f}; "
        f"out of sample, on the candles it served until the retraining: {gate.served_difference:+.5f}",
    ]
    if gate.note:
        lines.append(f"  {gate.note}")
    else:
        lines.append(
            f"  challenger promoted: {gate.promoted_over_validated}/{gate.pairs} against champion A, "
            f"{gate.promoted_over_refit}/{gate.pairs} against champion B"
        )
    return "\n".join(lines)


# --- bootstraps ---------------------------------------------------------------------------------


def moving_block_indices(units: int, block: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """``replicates`` × ``units`` indices of a circular moving-block bootstrap."""
    block = max(1, min(block, units))
    blocks = -(-units // block)
    starts = rng.integers(0, units, size=(replicates, blocks))
    indices = (starts[:, :, None] + np.arange(block)[None, None, :]) % units
    return indices.reshape(replicates, -1)[:, :units]


def ratio_interval(sums: np.ndarray, counts: np.ndarray, indices: np.ndarray) -> tuple[float, float]:
    """95 % percentile interval of sum(sums[i]) / sum(counts[i]) over the resampled ``indices``."""
    estimates = sums[indices].sum(axis=1) / counts[indices].sum(axis=1)
    low, high = np.percentile(estimates, [2.5, 97.5])
    return float(low), float(high)


# --- per-horizon summary --------------------------------------------------------------------------


@dataclass
class HorizonSummary:
    hours: int
    origins: int
    candles: int
    log_loss: dict[str, float]
    auc: dict[str, float]
    beats_prior: dict[str, int]  # origins where the model's log loss is below prior_all's
    difference: dict[str, float]  # refit - validated, mean per candle
    origin_interval: dict[str, tuple[float, float]]
    candle_interval: dict[str, tuple[float, float]]
    refit_wins: dict[str, int]  # origins where the refit's log loss is below A's
    heldout_log_loss: float  # A's recorded held-out log loss, mean over origins
    per_origin: dict[str, np.ndarray] = field(repr=False)


def summarize(
    origins: list[Origin], hours: int, origin_block: int, candle_block_minutes: int, rng: np.random.Generator
) -> HorizonSummary:
    pieces = [
        (index, origin, np.asarray(origin.served_times < origin.time + pd.Timedelta(hours=hours)))
        for index, origin in enumerate(origins)
    ]
    target = np.concatenate([o.target[k] for _, o, k in pieces])
    owner = np.concatenate([np.full(int(k.sum()), i) for i, _, k in pieces])
    stamps = pd.DatetimeIndex(np.concatenate([o.served_times[k].asi8 for _, o, k in pieces]))
    probability = {name: np.concatenate([o.probability[name][k] for _, o, k in pieces]) for name in MODELS}
    loss = {name: log_losses(target, probability[name]) for name in MODELS}
    counts = np.bincount(owner, minlength=len(origins)).astype("float64")
    per_origin = {name: np.bincount(owner, weights=loss[name], minlength=len(origins)) / counts for name in MODELS}

    origin_indices = moving_block_indices(len(origins), origin_block, BOOTSTRAP_REPLICATES, rng)
    block_of = ((stamps - stamps.min()) // pd.Timedelta(minutes=candle_block_minutes)).to_numpy().astype(int)
    blocks = int(block_of.max()) + 1
    block_counts = np.bincount(block_of, minlength=blocks).astype("float64")
    candle_indices = rng.integers(0, blocks, size=(BOOTSTRAP_REPLICATES, blocks))

    difference, origin_interval, candle_interval, refit_wins = {}, {}, {}, {}
    for name in REFITS:
        delta = loss[name] - loss["validated"]
        difference[name] = float(delta.mean())
        origin_sums = np.bincount(owner, weights=delta, minlength=len(origins))
        origin_interval[name] = ratio_interval(origin_sums, counts, origin_indices)
        block_sums = np.bincount(block_of, weights=delta, minlength=blocks)
        candle_interval[name] = ratio_interval(block_sums, block_counts, candle_indices)
        refit_wins[name] = int((per_origin[name] < per_origin["validated"]).sum())
    return HorizonSummary(
        hours=hours,
        origins=len(origins),
        candles=len(target),
        log_loss={name: float(loss[name].mean()) for name in MODELS},
        auc={name: float(roc_auc_score(target, probability[name])) for name in MODELS},
        beats_prior={name: int((per_origin[name] < per_origin["prior_all"]).sum()) for name in MODELS},
        difference=difference,
        origin_interval=origin_interval,
        candle_interval=candle_interval,
        refit_wins=refit_wins,
        heldout_log_loss=float(np.mean([o.heldout_log_loss for o in origins])),
        per_origin=per_origin,
    )


# --- output -------------------------------------------------------------------------------------


def table(summaries: list[HorizonSummary]) -> str:
    head = (
        f"{'horizon':>7}  {'model':<26} {'log loss':>9} {'B - A':>9} {'95% CI, origin blocks':>22} "
        f"{'95% CI, candle blocks':>22} {'beats A':>8} {'beats prior':>11} {'AUC':>7}"
    )
    lines = [head, "-" * len(head)]
    for summary in summaries:
        n = summary.origins
        for name in MODELS:
            if name in REFITS:
                low, high = summary.origin_interval[name]
                c_low, c_high = summary.candle_interval[name]
                delta = f"{summary.difference[name]:+.5f}"
                origin_ci = f"[{low:+.5f}, {high:+.5f}]"
                candle_ci = f"[{c_low:+.5f}, {c_high:+.5f}]"
                wins = f"{summary.refit_wins[name]}/{n}"
            else:
                delta = origin_ci = candle_ci = wins = "-"
            beats = "-" if name == "prior_all" else f"{summary.beats_prior[name]}/{n}"
            lines.append(
                f"{summary.hours:>6}h  {LABELS[name]:<26} {summary.log_loss[name]:>9.5f} {delta:>9} "
                f"{origin_ci:>22} {candle_ci:>22} {wins:>8} {beats:>11} {summary.auc[name]:>7.4f}"
            )
        lines.append(
            f"{'':>9}{n} origins, {summary.candles:,} served candles; A's recorded held-out log "
            f"loss (mean over origins) {summary.heldout_log_loss:.5f}"
        )
    return "\n".join(lines)


def origin_table(origins: list[Origin], summary: HorizonSummary) -> str:
    names = (
        "origin T",
        "history",
        "A rows",
        "B rows",
        "A trees",
        "B' trees",
        "A held-out",
        "A",
        "B",
        "B'",
        "prior",
        "B - A",
    )
    widths = (11, 8, 7, 7, 7, 8, 10, 8, 8, 8, 8, 9)
    head = " ".join(f"{name:>{width}}" for name, width in zip(names, widths, strict=True))
    lines = [f"per origin, next {summary.hours} h (log loss)", head, "-" * len(head)]
    per = summary.per_origin
    for index, origin in enumerate(origins):
        lines.append(
            f"{origin.time:%m-%d %H:%M} {origin.history_rows:>8,} {origin.validated_rows:>7,} {origin.refit_rows:>7,} "
            f"{origin.trees:>7} {origin.refit_early_stopped_trees:>8} {origin.heldout_log_loss:>10.5f} "
            f"{per['validated'][index]:>8.5f} {per['refit_fixed'][index]:>8.5f} "
            f"{per['refit_early_stopped'][index]:>8.5f} {per['prior_all'][index]:>8.5f} "
            f"{per['refit_fixed'][index] - per['validated'][index]:>+9.5f}"
        )
    return "\n".join(lines)


def as_json(summaries: list[HorizonSummary], origins: list[Origin], settings: dict) -> dict:
    return {
        "settings": settings,
        "feature_columns": list(FEATURE_COLUMNS),
        "horizons": [
            {
                "hours": s.hours,
                "origins": s.origins,
                "candles": s.candles,
                "log_loss": s.log_loss,
                "auc": s.auc,
                "beats_prior": s.beats_prior,
                "difference": s.difference,
                "origin_interval": s.origin_interval,
                "candle_interval": s.candle_interval,
                "refit_wins": s.refit_wins,
                "heldout_log_loss": s.heldout_log_loss,
                "per_origin": {name: values.tolist() for name, values in s.per_origin.items()},
            }
            for s in summaries
        ],
        "origins": [
            {
                "time": o.time.isoformat(),
                "history_rows": o.history_rows,
                "heldout_rows": o.heldout_rows,
                "validated_rows": o.validated_rows,
                "refit_rows": o.refit_rows,
                "trees": o.trees,
                "refit_early_stopped_trees": o.refit_early_stopped_trees,
                "heldout_log_loss": o.heldout_log_loss,
            }
            for o in origins
        ],
    }


def periods_text(origins: list[Origin], summaries: list[HorizonSummary], splits: list[pd.Timestamp]) -> str:
    """Mean B - A (and B' - A) over the origins of each period between ``splits``."""
    times = pd.DatetimeIndex([origin.time for origin in origins])
    edges = [times[0], *[split for split in splits if times[0] < split <= times[-1]], times[-1] + pd.Timedelta(1, "ns")]
    lines = ["B - A (B' - A) by period of the origin, mean over origins; refit better at how many"]
    for start, end in itertools.pairwise(edges):
        chosen = np.asarray((times >= start) & (times < end))
        parts = []
        for summary in summaries:
            per = summary.per_origin
            fixed = per["refit_fixed"][chosen] - per["validated"][chosen]
            stopped = per["refit_early_stopped"][chosen] - per["validated"][chosen]
            parts.append(
                f"{summary.hours}h {fixed.mean():+.5f} ({stopped.mean():+.5f}) {(fixed < 0).sum()}/{chosen.sum()}"
            )
        lines.append(f"  {start:%m-%d %H:%M} .. {times[chosen][-1]:%m-%d %H:%M}: " + "; ".join(parts))
    return "\n".join(lines)


def origin_times(
    features: pd.DataFrame, first_day: float, every_hours: float, longest: pd.Timedelta
) -> list[pd.Timestamp]:
    """Every ``every_hours`` from ``first_day`` days after the first candle, while the whole
    longest serving period fits in the file, so every horizon scores the same origins."""
    first, last = features["open_time"].iloc[0], features["open_time"].iloc[-1]
    times, origin = [], first + pd.Timedelta(days=first_day)
    while origin + longest <= last + pd.Timedelta(minutes=1):
        times.append(origin)
        origin += pd.Timedelta(hours=every_hours)
    return times


def run_seed(
    features: pd.DataFrame,
    times: list[pd.Timestamp],
    longest: pd.Timedelta,
    random_state: int,
    began: float,
    verbose: bool,
) -> list[Origin]:
    # Production's settings (n_jobs=2, heldout_fraction=0.15, ...) but for the seed.
    config = WalkForwardConfig(interval=INTERVAL, random_state=random_state)
    origins = []
    for origin_time in times:
        origins.append(study_origin(features, origin_time, longest, config))
        o = origins[-1]
        if verbose:
            say(
                f"  {o.time:%m-%d %H:%M}: history {o.history_rows:,}, A trees {o.trees}, "
                f"B' trees {o.refit_early_stopped_trees} ({time.perf_counter() - began:.0f} s)"
            )
    say(f"  random_state {random_state}: {len(origins)} origins done ({time.perf_counter() - began:.0f} s)")
    return origins


def seeds_table(rows: list[tuple[int, list[HorizonSummary], GateSummary]]) -> str:
    stopped = "B' - A"
    head = (
        f"{'seed':>5} {'horizon':>7} {'A':>8} {'B':>8} {'B - A':>9} {'95% CI, origin blocks':>22} "
        f"{stopped:>9} {'95% CI, origin blocks':>22}   gate: B trained on, B - A there, promoted vs A / vs B"
    )
    lines = ["the same study with other XGBoost seeds (random_state of every fit)", head, "-" * len(head)]
    for seed, summaries, gate in rows:
        for summary in summaries:
            fixed, stopped = summary.origin_interval["refit_fixed"], summary.origin_interval["refit_early_stopped"]
            gate_part = ""
            if summary is summaries[-1]:
                promoted = (
                    "-"
                    if gate.note
                    else f"{gate.promoted_over_validated}/{gate.pairs} / {gate.promoted_over_refit}/{gate.pairs}"
                )
                gate_part = f"   {gate.in_sample_share:.0%}, {gate.gate_difference:+.5f}, {promoted}"
            lines.append(
                f"{seed:>5} {summary.hours:>6}h {summary.log_loss['validated']:>8.5f} "
                f"{summary.log_loss['refit_fixed']:>8.5f} {summary.difference['refit_fixed']:>+9.5f} "
                f"{f'[{fixed[0]:+.5f}, {fixed[1]:+.5f}]':>22} {summary.difference['refit_early_stopped']:>+9.5f} "
                f"{f'[{stopped[0]:+.5f}, {stopped[1]:+.5f}]':>22}{gate_part}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.serving_refit_study", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--candles", type=Path, default=None, help=f"1-minute candle file (default: {DEFAULT_CANDLES})")
    parser.add_argument(
        "--first-day",
        type=float,
        default=3.0,
        help="first origin, in days after the first candle (default 3: the start of day 4)",
    )
    parser.add_argument("--every-hours", type=float, default=12.0, help="hours between origins")
    parser.add_argument("--horizons", default="6,12,24", help="serving periods in hours, comma-separated")
    parser.add_argument(
        "--origin-block",
        type=int,
        default=4,
        help="consecutive origins per bootstrap block (default 4: two days at 12 h)",
    )
    parser.add_argument("--candle-block-minutes", type=int, default=60, help="calendar minutes per candle block")
    parser.add_argument(
        "--seeds",
        default=f"{WalkForwardConfig().random_state},1,2,3,4",
        help="XGBoost random_state of every fit; the first (production's 7 by default) gets "
        "the full tables, the others a line per horizon",
    )
    parser.add_argument(
        "--periods",
        default="2023-03-10,2023-03-14",
        help="dates (UTC) splitting the origins into periods for a breakdown of B - A "
        "(default: the SVB crash of the default file; dates outside the origins are ignored)",
    )
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="skip checking model A against train_walk_forward's own model at the first origin",
    )
    parser.add_argument(
        "--per-origin", type=int, default=24, help="print the per-origin table for this horizon (0: none)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    options = parser.parse_args(argv)
    path = options.candles or DEFAULT_CANDLES
    if not path.is_file():
        parser.error(f"{path}: candle file not found")
    horizons = sorted(int(part) for part in options.horizons.split(",") if part.strip())
    seeds = [int(part) for part in options.seeds.split(",") if part.strip()]
    began = time.perf_counter()

    candles = read_candle_file(path, INTERVAL)
    features = compute_features(candles, INTERVAL).reset_index(drop=True)
    longest = pd.Timedelta(hours=max(horizons))
    times = origin_times(features, options.first_day, options.every_hours, longest)
    config = WalkForwardConfig(interval=INTERVAL, random_state=seeds[0])
    header = (
        f"{path.name}: {len(candles):,} candles {features['open_time'].iloc[0]:%Y-%m-%d %H:%M} .. "
        f"{features['open_time'].iloc[-1]:%Y-%m-%d %H:%M}; {len(times)} origins every {options.every_hours:g} h, "
        f"{times[0]:%m-%d %H:%M} .. {times[-1]:%m-%d %H:%M}; heldout_fraction {config.heldout_fraction}, "
        f"embargo {config.embargo_candles} candles; {len(FEATURE_COLUMNS)} features: {', '.join(FEATURE_COLUMNS)}"
    )
    say(header)

    model_config = ModelConfig()
    alpha, margin = getattr(model_config, "promotion_alpha", 0.05), model_config.promotion_margin
    results = []
    for position, seed in enumerate(seeds):
        origins = run_seed(features, times, longest, seed, began, verbose=position == 0)
        if position == 0 and not options.no_check:
            gap = check_against_production(features, origins[0], config)
            say(f"check: A vs train_walk_forward's model at {origins[0].time:%m-%d %H:%M}: max |dp| = {gap:.2e}")
            if gap > 1e-6:
                say("check FAILED: model A is not the model production would register")
                return 1
        rng = np.random.default_rng(SEED)
        summaries = [
            summarize(origins, hours, options.origin_block, options.candle_block_minutes, rng) for hours in horizons
        ]
        results.append((seed, origins, summaries, gate_study(origins, alpha, margin)))

    seed, origins, summaries, gate = results[0]
    print(header)
    print(f"\nrandom_state {seed}\n")
    print(table(summaries))
    splits = [pd.Timestamp(part, tz="UTC") for part in options.periods.split(",") if part.strip()]
    print()
    print(periods_text(origins, summaries, splits))
    print()
    print(gate_text(gate))
    if options.per_origin in horizons:
        print()
        print(origin_table(origins, summaries[horizons.index(options.per_origin)]))
    if len(results) > 1:
        print()
        print(seeds_table([(seed, summaries, gate) for seed, _, summaries, gate in results]))
    elapsed = time.perf_counter() - began
    print(
        f"\n{elapsed:.0f} s; bootstrap {BOOTSTRAP_REPLICATES:,} replicates, seed {SEED}; origin blocks of "
        f"{options.origin_block}, candle blocks of {options.candle_block_minutes} min; XGBoost n_jobs "
        f"{config.n_jobs}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
    )
    if options.json:
        settings = {
            "candles": str(path),
            "first_day": options.first_day,
            "every_hours": options.every_hours,
            "horizons": horizons,
            "origin_block": options.origin_block,
            "candle_block_minutes": options.candle_block_minutes,
            "bootstrap_seed": SEED,
            "replicates": BOOTSTRAP_REPLICATES,
            "seconds": elapsed,
        }
        payload = {"settings": settings, "runs": []}
        for seed, origins, summaries, gate in results:
            run = as_json(summaries, origins, {"random_state": seed})
            run["gate"] = asdict(gate)
            payload["runs"].append(run)
        options.json.write_text(json.dumps(payload, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
