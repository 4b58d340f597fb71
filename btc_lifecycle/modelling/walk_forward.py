"""Walk-forward evaluation of the direction model against baselines, then the final model.

Time is split into an initial training block, ``n_folds`` test blocks in time order and a
held-out window at the end. Training rows always end at least ``embargo_candles`` before the
rows they are tested on, so no feature window or target straddles the boundary.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from xgboost import XGBClassifier

from btc_lifecycle.domain.candles import interval_ms
from btc_lifecycle.modelling.baselines import baseline_probabilities
from btc_lifecycle.modelling.features import (
    FEATURE_COLUMNS,
    LONGEST_WINDOW,
    TARGET_COLUMN,
    TRAINABLE_COLUMN,
)
from btc_lifecycle.modelling.metrics import ClassificationMetrics, classification_metrics

MODEL_NAMES = ("xgboost", "majority", "persistence", "prior")
HELDOUT_BLOCK = "held-out"
MIN_EARLY_STOPPING_ROWS = 200


@dataclass(frozen=True)
class WalkForwardConfig:
    """How time is split and how the XGBoost model is fitted."""

    interval: str = "1m"
    n_folds: int = 5
    train_window: Literal["expanding", "rolling"] = "expanding"
    rolling_train_candles: int | None = None
    embargo_candles: int = LONGEST_WINDOW + 1
    heldout_fraction: float = 0.15
    # The tail of each training block that early stopping watches instead of fitting on.
    validation_fraction: float = 0.15
    n_estimators: int = 300
    max_depth: int = 3
    learning_rate: float = 0.05
    min_child_weight: float = 50.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    early_stopping_rounds: int = 30
    random_state: int = 7
    # OpenMP threads spin-wait while other processes hold the cores, which slows a fit many
    # times over on a busy machine: run with OMP_WAIT_POLICY=PASSIVE there, or use 1.
    n_jobs: int = 2

    def __post_init__(self) -> None:
        interval_ms(self.interval)
        if self.n_folds < 1:
            raise ValueError(f"n_folds must be at least 1, got {self.n_folds}")
        if self.train_window not in ("expanding", "rolling"):
            raise ValueError(f"train_window must be 'expanding' or 'rolling', got {self.train_window!r}")
        if self.train_window == "rolling" and not self.rolling_train_candles:
            raise ValueError("rolling_train_candles is required when train_window is 'rolling'")
        if self.embargo_candles < LONGEST_WINDOW + 1:
            raise ValueError(
                f"embargo_candles must be at least LONGEST_WINDOW + 1 = {LONGEST_WINDOW + 1}, "
                f"got {self.embargo_candles}"
            )
        for name in ("heldout_fraction", "validation_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class FoldResult:
    """One test block: its time range, row counts and the metrics of every model on it."""

    index: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    train_rows: int
    test_rows: int
    metrics: dict[str, ClassificationMetrics]


@dataclass(frozen=True)
class WalkForwardResult:
    """Folds, pooled metrics, and the final model with its held-out window."""

    folds: tuple[FoldResult, ...]
    overall: dict[str, ClassificationMetrics]
    model: XGBClassifier
    heldout: pd.DataFrame
    heldout_metrics: dict[str, ClassificationMetrics]
    feature_columns: tuple[str, ...]
    training_range: tuple[pd.Timestamp, pd.Timestamp]
    heldout_range: tuple[pd.Timestamp, pd.Timestamp]
    row_counts: dict[str, int]
    fingerprint: str
    config: WalkForwardConfig
    training_seconds: float = field(default=0.0)
    # Every candle a model was scored on without training on it, in time order: ``open_time``,
    # ``block`` ("fold 0".., "held-out"), ``target`` and the XGBoost model's ``up_probability``.
    out_of_sample: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Per block, the model's calls on its training block's early-stopping tail, which it did not
    # fit on: evidence a trading rule may be tuned on without seeing the block it trades.
    threshold_evidence: pd.DataFrame = field(default_factory=pd.DataFrame)


def train_walk_forward(features: pd.DataFrame, config: WalkForwardConfig = WalkForwardConfig()) -> WalkForwardResult:
    """Evaluate on time-ordered folds, then fit on all but the held-out window and score it."""
    started = time.perf_counter()
    frame = features.reset_index(drop=True)
    times = frame["open_time"]
    embargo = pd.Timedelta(milliseconds=interval_ms(config.interval)) * config.embargo_candles
    trainable = frame[TRAINABLE_COLUMN].to_numpy(dtype=bool)
    if not trainable.any():
        raise TooFewTrainableCandles("walk-forward", 0, 0, 0, len(frame), 0, config)

    heldout_candles = max(1, int(np.ceil(len(frame) * config.heldout_fraction)))
    heldout_start = times.iloc[len(frame) - heldout_candles]
    folds, overall, scored = _evaluate_folds(frame, trainable, heldout_start, embargo, config)

    final_train = _training_rows(frame, trainable, heldout_start, embargo, config)
    heldout_rows = frame.loc[(times >= heldout_start).to_numpy() & trainable]
    _require_rows(final_train, heldout_rows, "held-out window", trainable, config)
    model, probabilities, evidence = _fit_and_score(final_train, heldout_rows, embargo, config)
    scored.append(_scored(HELDOUT_BLOCK, heldout_rows, probabilities["xgboost"], evidence))
    heldout = heldout_rows[["open_time", *FEATURE_COLUMNS, TARGET_COLUMN]].copy()
    for name in MODEL_NAMES:
        heldout[f"{name}_up_probability"] = probabilities[name]
    heldout_target = heldout[TARGET_COLUMN].to_numpy(dtype="int64")

    return WalkForwardResult(
        folds=folds,
        overall=overall,
        model=model,
        heldout=heldout.reset_index(drop=True),
        heldout_metrics=_metrics_by_model(heldout_target, probabilities),
        feature_columns=FEATURE_COLUMNS,
        training_range=(final_train["open_time"].iloc[0], final_train["open_time"].iloc[-1]),
        heldout_range=(heldout["open_time"].iloc[0], heldout["open_time"].iloc[-1]),
        row_counts={
            "candles": len(frame),
            "trainable": int(trainable.sum()),
            "excluded": int((~trainable).sum()),
            "final_train": len(final_train),
            "heldout": len(heldout),
        },
        fingerprint=data_fingerprint(final_train),
        config=config,
        training_seconds=time.perf_counter() - started,
        out_of_sample=_in_time_order([calls for calls, _ in scored]),
        threshold_evidence=_in_time_order([evidence for _, evidence in scored]),
    )


def predict_up_probability(model: XGBClassifier, features: pd.DataFrame) -> np.ndarray:
    """The model's probability that each row's target is 1: the close a label horizon later (the
    next candle's, by default) is higher."""
    return model.predict_proba(features[list(FEATURE_COLUMNS)])[:, 1]


def input_fingerprint(features: pd.DataFrame, config: WalkForwardConfig) -> str:
    """sha256 of everything a training reads: the rows (times, features, target, trainable), the
    feature list and the walk-forward settings. Same inputs, same hash: nothing new to train."""
    digest = hashlib.sha256(repr((FEATURE_COLUMNS, asdict(config))).encode())
    digest.update(np.ascontiguousarray(features["open_time"].to_numpy("datetime64[ns]").view("int64")).tobytes())
    digest.update(np.ascontiguousarray(features[list(FEATURE_COLUMNS)].to_numpy("float64")).tobytes())
    digest.update(np.ascontiguousarray(features[TARGET_COLUMN].astype("float64").to_numpy(na_value=np.nan)).tobytes())
    digest.update(np.ascontiguousarray(features[TRAINABLE_COLUMN].to_numpy(bool)).tobytes())
    return digest.hexdigest()


def data_fingerprint(rows: pd.DataFrame) -> str:
    """sha256 of the feature matrix and target as bytes: same training data, same hash."""
    digest = hashlib.sha256(",".join(FEATURE_COLUMNS).encode())
    digest.update(np.ascontiguousarray(rows[list(FEATURE_COLUMNS)].to_numpy("float64")).tobytes())
    digest.update(np.ascontiguousarray(rows[TARGET_COLUMN].to_numpy("int8")).tobytes())
    return digest.hexdigest()


def _evaluate_folds(
    frame: pd.DataFrame,
    trainable: np.ndarray,
    heldout_start: pd.Timestamp,
    embargo: pd.Timedelta,
    config: WalkForwardConfig,
) -> tuple[tuple[FoldResult, ...], dict[str, ClassificationMetrics], list[tuple[pd.DataFrame, pd.DataFrame]]]:
    """Test blocks in time order before the held-out window; metrics per fold and pooled, and
    each fold's scored calls with its threshold evidence."""
    times = frame["open_time"]
    development = np.flatnonzero((times < heldout_start - embargo).to_numpy())
    # Block 0 only trains; blocks 1..n_folds are tested, each after all earlier ones.
    edges = np.linspace(0, len(development), config.n_folds + 2).astype(int)
    folds, pooled, scored = [], [], []
    for index in range(config.n_folds):
        block = development[edges[index + 1] : edges[index + 2]]
        test = frame.iloc[block][trainable[block]]
        test_start = times.iloc[block[0]] if len(block) else None
        train = _training_rows(frame, trainable, test_start, embargo, config)
        _require_rows(train, test, f"fold {index}", trainable, config)
        _, probabilities, evidence = _fit_and_score(train, test, embargo, config)
        scored.append(_scored(f"fold {index}", test, probabilities["xgboost"], evidence))
        pooled.append((test[TARGET_COLUMN].to_numpy(dtype="int64"), probabilities))
        folds.append(
            FoldResult(
                index=index,
                train_start=train["open_time"].iloc[0],
                train_end=train["open_time"].iloc[-1],
                test_start=test["open_time"].iloc[0],
                test_end=test["open_time"].iloc[-1],
                train_rows=len(train),
                test_rows=len(test),
                metrics=_metrics_by_model(pooled[-1][0], probabilities),
            )
        )
    overall_target = np.concatenate([target for target, _ in pooled])
    overall = _metrics_by_model(
        overall_target,
        {name: np.concatenate([probabilities[name] for _, probabilities in pooled]) for name in MODEL_NAMES},
    )
    return tuple(folds), overall, scored


def _in_time_order(blocks: list[pd.DataFrame]) -> pd.DataFrame:
    """Blocks one after another; an empty one (a block that watched no tail) adds nothing."""
    return pd.concat([block for block in blocks if len(block)] or blocks[:1], ignore_index=True)


def _scored(
    block: str, test: pd.DataFrame, up_probability: np.ndarray, evidence: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    calls = pd.DataFrame(
        {
            "open_time": test["open_time"].reset_index(drop=True),
            "block": block,
            "target": test[TARGET_COLUMN].to_numpy(dtype="int64"),
            "up_probability": up_probability,
        }
    )
    return calls, evidence.assign(block=block)


def _training_rows(
    frame: pd.DataFrame,
    trainable: np.ndarray,
    test_start: pd.Timestamp | None,
    embargo: pd.Timedelta,
    config: WalkForwardConfig,
) -> pd.DataFrame:
    """Trainable rows that end at least one embargo before ``test_start``."""
    if test_start is None:
        return frame.iloc[:0]
    end = test_start - embargo
    keep = (frame["open_time"] < end).to_numpy() & trainable
    if config.train_window == "rolling":
        step = pd.Timedelta(milliseconds=interval_ms(config.interval))
        keep &= (frame["open_time"] >= end - step * config.rolling_train_candles).to_numpy()
    return frame.loc[keep]


class TooFewTrainableCandles(ValueError):
    """A training or test block holds too few trainable candles (or only one target class).

    ``what`` names the block (``"fold 2"``, ``"held-out window"``); the counts are attributes so
    that callers (the model asset) can show them without parsing the message.
    """

    def __init__(
        self,
        what: str,
        train_rows: int,
        test_rows: int,
        train_classes: int,
        candles: int,
        trainable: int,
        config: WalkForwardConfig,
    ) -> None:
        self.what, self.train_rows, self.test_rows = what, train_rows, test_rows
        self.train_classes, self.candles, self.trainable = train_classes, candles, trainable
        one_class = " with a single target class" if train_rows and train_classes < 2 else ""
        super().__init__(
            f"{what}: too few trainable candles ({train_rows} to train{one_class}, {test_rows} to "
            f"test; {trainable} of {candles} feature rows are trainable) for n_folds={config.n_folds}, "
            f"heldout_fraction={config.heldout_fraction}, embargo_candles={config.embargo_candles}. "
            "Ingest more history, or change the settings: features.max_fill_minutes (fill the "
            "trade-less minutes of a thin market so that feature windows run through them), "
            "model.n_folds (fewer, larger folds), model.heldout_fraction, model.train_window_days "
            "(null trains on all history)"
        )


def _require_rows(
    train: pd.DataFrame, test: pd.DataFrame, what: str, trainable: np.ndarray, config: WalkForwardConfig
) -> None:
    classes = train[TARGET_COLUMN].nunique()
    if len(train) == 0 or len(test) == 0 or classes < 2:
        raise TooFewTrainableCandles(what, len(train), len(test), classes, len(trainable), int(trainable.sum()), config)


def _fit_and_score(
    train: pd.DataFrame, test: pd.DataFrame, embargo: pd.Timedelta, config: WalkForwardConfig
) -> tuple[XGBClassifier, dict[str, np.ndarray], pd.DataFrame]:
    """The fitted model, every model's probabilities on ``test``, and the XGBoost model's calls
    on the tail it watched instead of fitting (empty when it fitted the whole block)."""
    train_target = train[TARGET_COLUMN].to_numpy(dtype="int64")
    model = _fit_xgboost(train, embargo, config)
    _, validation, early_stopping = _early_stopping_split(train, embargo, config)
    watched = validation if early_stopping else validation.iloc[:0]
    evidence = pd.DataFrame(
        {
            "open_time": watched["open_time"].reset_index(drop=True),
            "up_probability": predict_up_probability(model, watched) if len(watched) else np.empty(0),
        }
    )
    return (
        model,
        {"xgboost": predict_up_probability(model, test), **baseline_probabilities(train_target, test)},
        evidence,
    )


def _early_stopping_split(
    train: pd.DataFrame, embargo: pd.Timedelta, config: WalkForwardConfig
) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """The rows to fit, the embargoed tail to watch, and whether both are big enough to early-stop."""
    validation_start = train["open_time"].iloc[int(len(train) * (1 - config.validation_fraction))]
    fit = train.loc[train["open_time"] < validation_start - embargo]
    validation = train.loc[train["open_time"] >= validation_start]
    early_stopping = (
        len(fit) >= MIN_EARLY_STOPPING_ROWS
        and len(validation) >= MIN_EARLY_STOPPING_ROWS
        and fit[TARGET_COLUMN].nunique() == 2
    )
    return fit, validation, early_stopping


def _fit_xgboost(train: pd.DataFrame, embargo: pd.Timedelta, config: WalkForwardConfig) -> XGBClassifier:
    """Fit on the train block; early stopping watches its embargoed tail when that is big enough."""
    fit, validation, early_stopping = _early_stopping_split(train, embargo, config)
    model = XGBClassifier(
        objective="binary:logistic",
        eval_metric="logloss",
        tree_method="hist",
        n_jobs=config.n_jobs,
        random_state=config.random_state,
        n_estimators=config.n_estimators,
        max_depth=config.max_depth,
        learning_rate=config.learning_rate,
        min_child_weight=config.min_child_weight,
        subsample=config.subsample,
        colsample_bytree=config.colsample_bytree,
        early_stopping_rounds=config.early_stopping_rounds if early_stopping else None,
    )
    columns = list(FEATURE_COLUMNS)
    if early_stopping:
        model.fit(
            fit[columns],
            fit[TARGET_COLUMN].to_numpy(dtype="int64"),
            eval_set=[(validation[columns], validation[TARGET_COLUMN].to_numpy(dtype="int64"))],
            verbose=False,
        )
    else:
        model.fit(train[columns], train[TARGET_COLUMN].to_numpy(dtype="int64"), verbose=False)
    return model


def _metrics_by_model(target: np.ndarray, probabilities: dict[str, np.ndarray]) -> dict[str, ClassificationMetrics]:
    return {name: classification_metrics(target, probabilities[name]) for name in MODEL_NAMES}
