"""MLflow tracking and model registry for the direction model.

One run per training: params, data range, row counts, fingerprint, metrics beside their
baselines, charts, the model in XGBoost's own format (never pickle), its registration, and the
promotion decision against the current champion on the same held-out window.

Works inside an MLflow run someone else started (dagster-mlflow's ``mlflow_tracking``, in the
Dagster assets): it logs into that run and leaves ending it to its owner, who must point it at the
same tracking URI. Otherwise it starts its own run and always ends it, FINISHED on success and
FAILED on any exception. Note that it sets MLflow's process-wide tracking and registry URIs.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import mlflow
import mlflow.xgboost
import numpy as np
import pandas as pd
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from btc_lifecycle.modelling.champion import (
    GATE_MEASURES,
    KEEP_CHAMPION,
    PromotionDecision,
    decide_promotion,
    replace_incomparable,
)
from btc_lifecycle.modelling.features import LONGEST_WINDOW
from btc_lifecycle.modelling.metrics import METRIC_NAMES
from btc_lifecycle.modelling.model_card import (
    calibration_png,
    feature_importance_png,
    render_model_card,
)
from btc_lifecycle.modelling.paired_test import log_losses
from btc_lifecycle.modelling.walk_forward import WalkForwardResult, predict_up_probability

DEFAULT_MODEL_NAME = "btc_direction"
CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"
MODEL_FORMAT = "ubj"  # XGBoost's binary JSON: portable across versions, unlike a pickle


# Where a run keeps its out-of-sample calls and their tuning evidence, for the backtest.
OUT_OF_SAMPLE_ARTIFACT = "backtest/out_of_sample.parquet"
THRESHOLD_EVIDENCE_ARTIFACT = "backtest/threshold_evidence.parquet"
# Per-candle losses of up-probabilities on the held-out window: what the gate's paired test compares.
GateLosses = Callable[[np.ndarray], np.ndarray]

# The hash of everything a training reads (btc_lifecycle.modelling.walk_forward.input_fingerprint).
INPUT_FINGERPRINT_TAG = "input_fingerprint"


@dataclass(frozen=True)
class TrainingRecord:
    """What one logged training produced: the run, the registered version, the gate's verdict."""

    run_id: str
    model_version: str
    alias: str
    decision: PromotionDecision


@dataclass(frozen=True)
class TrainedVersion:
    """One registered version as its backtest reads it, from one look at the registry."""

    version: str
    run_id: str
    alias: str
    decision: str
    promotion_reason: str
    gate_p_value: float | None
    params: dict[str, str]
    metrics: dict[str, float]
    out_of_sample: pd.DataFrame
    threshold_evidence: pd.DataFrame


@dataclass(frozen=True)
class ChampionInfo:
    """The champion's version, run and held-out metrics, for monitoring."""

    version: str
    run_id: str
    heldout_metrics: dict[str, float]
    tags: dict[str, str]
    trained_from: pd.Timestamp
    trained_until: pd.Timestamp

    @property
    def heldout_start(self) -> pd.Timestamp:
        """Where the champion's unseen data begins: earlier candles were in its training."""
        return pd.Timestamp(self.tags["heldout_start"])

    @property
    def validated_window(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The latest candles the champion was validated on: its own held-out window, or a later
        challenger's when a retraining kept it (the drift reference is re-based there)."""
        start = self.tags.get("validated_from") or self.tags["heldout_start"]
        end = self.tags.get("validated_until") or self.tags["heldout_end"]
        return pd.Timestamp(start), pd.Timestamp(end)

    @property
    def prior_up_share(self) -> float | None:
        """The share of up candles in its training data: the constant prior it must beat."""
        value = self.tags.get("prior_up_share")
        return float(value) if value else None


@dataclass(frozen=True)
class ModelRegistry:
    """Where runs and models live: a SQLite tracking store and a file artifact root."""

    tracking_uri: str
    artifact_location: str
    experiment_name: str = DEFAULT_MODEL_NAME
    model_name: str = DEFAULT_MODEL_NAME
    registry_uri: str | None = None  # None: the tracking store also holds the registry

    @classmethod
    def in_directory(cls, directory: Path, **names: str) -> ModelRegistry:
        """The registry under ``directory``: ``mlflow.db`` and ``artifacts/``."""
        directory = Path(directory).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        return cls(
            tracking_uri=f"sqlite:///{directory / 'mlflow.db'}",
            artifact_location=str(directory / "artifacts"),
            **names,
        )

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry)

    @property
    def registry(self) -> str:
        return self.registry_uri or self.tracking_uri

    def _use_stores(self) -> None:
        # mlflow's fluent API (start_run, log_model, load_model) reads process-wide URIs.
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry)

    def experiment_id(self) -> str:
        """The experiment's id, creating it with the file artifact root on first use."""
        return ensure_experiment(self.tracking_uri, self.experiment_name, self.artifact_location)

    @contextlib.contextmanager
    def training_run(self, dagster_run_id: str | None = None):
        """The active MLflow run of this experiment (dagster-mlflow's run for the Dagster run), or a
        new one that ends FINISHED, or FAILED on an exception: nested under the active run when that
        one is another experiment's (another market's model trained in the same Dagster run)."""
        self._use_stores()
        tags = {"dagster_run_id": dagster_run_id} if dagster_run_id else {}
        commit = _git_commit()
        if commit:
            tags["mlflow.source.git.commit"] = commit
        experiment_id = self.experiment_id()
        active = mlflow.active_run()
        if active is not None and active.info.experiment_id == experiment_id:
            mlflow.set_tags(tags)
            yield active
            return
        run = mlflow.start_run(experiment_id=experiment_id, tags=tags, nested=active is not None)
        try:
            yield run
        except BaseException:
            mlflow.end_run(status="FAILED")
            raise
        mlflow.end_run(status="FINISHED")

    def log_training(
        self,
        result: WalkForwardResult,
        dagster_run_id: str | None = None,
        margin: float = 0.0,
        alpha: float = 0.05,
        input_fingerprint: str | None = None,
        gate_losses: GateLosses | None = None,
        gate_metric: str = "log_loss",
        params: dict[str, object] | None = None,
    ) -> TrainingRecord:
        """Log the run, register the model and move the champion or challenger alias onto it.

        ``gate_losses`` turns held-out up-probabilities into the per-candle losses the gate
        compares (``gate_metric`` names them); log loss when None. When the champion is kept, it
        has just been validated on this challenger's held-out window: that window becomes its
        drift reference (tags ``validated_from/until``).
        """
        target = result.heldout["target"].to_numpy(dtype="int64")
        losses = gate_losses or (lambda probability: log_losses(target, probability))
        # Targets over a horizon of h candles overlap for h candles: their losses are correlated as long.
        lags = max(LONGEST_WINDOW, result.config.embargo_candles - LONGEST_WINDOW)
        with self.training_run(dagster_run_id) as run:
            importance_png = _log_evaluation(result, margin)
            mlflow.log_params({"gate_metric": gate_metric, **(params or {})})
            _log_out_of_sample(result)
            challenger_losses = losses(result.heldout["xgboost_up_probability"].to_numpy())
            prior_losses = losses(result.heldout["prior_up_probability"].to_numpy())
            champion = self.champion_info()
            champion_losses, incomparable = self._champion_heldout_losses(result, champion, losses)
            if incomparable:
                # A deliberate feature change must not freeze the registry on the old model.
                decision = replace_incomparable(challenger_losses, prior_losses, alpha, margin, lags)
            else:
                decision = decide_promotion(challenger_losses, champion_losses, prior_losses, alpha, margin, lags)
            if gate_metric != "log_loss":
                decision = replace(decision, reason=f"judged by {GATE_MEASURES[gate_metric]}: {decision.reason}")
            mlflow.log_metrics(
                {
                    f"gate_{key}": value
                    for key, value in decision.numbers.items()
                    if value is not None and np.isfinite(value)
                }
            )
            if decision.champion_log_loss is not None:
                mlflow.log_metric("champion_heldout_log_loss", decision.champion_log_loss)
            version = self._log_model(result)
            self._tag_decision(version, decision, result)
            if input_fingerprint:  # what `version_trained_on` finds: the same inputs train nothing new
                self.client.set_model_version_tag(self.model_name, version, INPUT_FINGERPRINT_TAG, input_fingerprint)
            card = render_model_card(result, decision, self.model_name, version, importance_png)
            mlflow.log_text(card, "model_card.html")
            alias = CHAMPION_ALIAS if decision.promote else CHALLENGER_ALIAS
            mlflow.set_tags(
                {
                    "promotion": alias,
                    "model_version": version,
                    "promotion_decision": decision.decision,
                    "beats_prior": str(decision.challenger_beats_prior).lower(),
                }
            )
            if decision.decision == KEEP_CHAMPION and champion is not None:
                self._rebaseline(champion.version, decision, result, version)
            # Last, so the champion only moves once everything about the version is recorded.
            self.client.set_registered_model_alias(self.model_name, alias, version)
            return TrainingRecord(run.info.run_id, version, alias, decision)

    def _rebaseline(
        self, champion_version: str, decision: PromotionDecision, result: WalkForwardResult, challenger_version: str
    ) -> None:
        """The kept champion was just validated on the challenger's held-out window: record it."""
        tags = {
            "validated_from": str(result.heldout_range[0]),
            "validated_until": str(result.heldout_range[1]),
            "rebaselined_by_version": challenger_version,
            "beats_prior": str(bool(decision.champion_beats_prior)).lower(),
            "latest_validation_log_loss": repr(decision.champion_log_loss),
            "latest_validation_prior_log_loss": repr(decision.prior_log_loss),
        }
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, champion_version, key, value)

    def fail_abandoned_runs(self, is_alive: Callable[[str], bool]) -> list[str]:
        """Mark FAILED every RUNNING run whose Dagster run is no longer alive (killed mid-training).

        A SIGKILL gives no process a chance to end its MLflow run; the next training cleans up.
        """
        experiment = self.client.get_experiment_by_name(self.experiment_name)
        if experiment is None:
            return []
        running = self.client.search_runs([experiment.experiment_id], filter_string="attributes.status = 'RUNNING'")
        abandoned = [run for run in running if not is_alive(run.data.tags.get("dagster_run_id", ""))]
        for run in abandoned:
            self.client.set_terminated(run.info.run_id, status="FAILED")
        return [run.info.run_id for run in abandoned]

    def trained_version(self, version: str) -> TrainedVersion:
        """``version`` with the run that trained it: what the gate decided, the run's params and
        metrics, and its out-of-sample calls with their threshold evidence."""
        model_version = self.client.get_model_version(self.model_name, str(version))
        run = self.client.get_run(model_version.run_id).data
        with tempfile.TemporaryDirectory() as directory:
            calls, evidence = [
                pd.read_parquet(self.client.download_artifacts(model_version.run_id, path, directory))
                for path in (OUT_OF_SAMPLE_ARTIFACT, THRESHOLD_EVIDENCE_ARTIFACT)
            ]
        p_value = model_version.tags.get("gate_p_value", "")
        return TrainedVersion(
            version=str(version),
            run_id=model_version.run_id,
            alias=", ".join(model_version.aliases) or "none",
            decision=model_version.tags.get("promotion_decision", "unknown"),
            promotion_reason=model_version.tags.get("promotion_reason", ""),
            gate_p_value=float(p_value) if p_value else None,
            params=dict(run.params),
            metrics=dict(run.metrics),
            out_of_sample=calls,
            threshold_evidence=evidence,
        )

    def log_backtest(self, run_id: str, metrics: dict[str, float], files: dict[str, Path]) -> None:
        """Add the backtest's after-cost metrics and its report to a (possibly finished) run."""
        finite = {key: value for key, value in metrics.items() if np.isfinite(value)}
        self.client.log_batch(run_id, metrics=[Metric(key, value, _now_ms(), 0) for key, value in finite.items()])
        for artifact_path, path in files.items():
            self.client.log_artifact(run_id, str(path), artifact_path=artifact_path)

    def artifact_uri(self, run_id: str, path: str) -> str:
        return f"{self.client.get_run(run_id).info.artifact_uri}/{path}"

    def load_champion(self):
        """The champion as an ``XGBClassifier``, loaded from ``models:/NAME@champion``."""
        self._use_stores()
        return mlflow.xgboost.load_model(f"models:/{self.model_name}@{CHAMPION_ALIAS}")

    def champion_info(self) -> ChampionInfo | None:
        """The champion's version and held-out metrics, or None before the first promotion."""
        try:
            version = self.client.get_model_version_by_alias(self.model_name, CHAMPION_ALIAS)
        except MlflowException as error:
            # No registered model, or a model without the alias; anything else is a real error.
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise
        run = self.client.get_run(version.run_id).data
        heldout = {
            key.removeprefix("heldout_"): value for key, value in run.metrics.items() if key.startswith("heldout_")
        }
        return ChampionInfo(
            str(version.version),
            version.run_id,
            heldout,
            dict(version.tags),
            trained_from=pd.Timestamp(run.params["train_start"]),
            trained_until=pd.Timestamp(run.params["train_end"]),
        )

    def version_trained_on(self, input_fingerprint: str) -> str | None:
        """The newest registered version trained on exactly these inputs, or None."""
        try:
            versions = self.client.search_model_versions(
                f"name = '{self.model_name}' and tags.{INPUT_FINGERPRINT_TAG} = '{input_fingerprint}'"
            )
        except MlflowException as error:
            if error.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return str(max(int(version.version) for version in versions)) if versions else None

    def aliases_of(self, version: str) -> list[str]:
        return list(self.client.get_model_version(self.model_name, version).aliases)

    def prior_up_shares(self, versions) -> dict[str, float | None]:
        """Each version's training share of up candles (None for versions logged without it)."""
        shares = {}
        for version in {str(v) for v in versions}:
            tag = self.client.get_model_version(self.model_name, version).tags.get("prior_up_share")
            shares[version] = float(tag) if tag else None
        return shares

    def _champion_heldout_losses(
        self, result: WalkForwardResult, champion: ChampionInfo | None, losses: GateLosses
    ) -> tuple[np.ndarray | None, bool]:
        """The champion's per-candle losses on this result's held-out window; True if it reads
        other features and cannot be scored there."""
        if champion is None:
            return None, False
        model = self.load_champion()
        expected = list(getattr(model, "feature_names_in_", result.feature_columns))
        if expected != list(result.feature_columns):
            return None, True
        return losses(predict_up_probability(model, result.heldout)), False

    def _log_model(self, result: WalkForwardResult) -> str:
        sample = result.heldout[list(result.feature_columns)].head(200)
        info = mlflow.xgboost.log_model(
            result.model,
            name="model",
            signature=infer_signature(sample, result.model.predict(sample)),
            input_example=sample.head(5),
            model_format=MODEL_FORMAT,
            pip_requirements=_pip_requirements(),
            registered_model_name=self.model_name,
        )
        return str(info.registered_model_version)

    def _tag_decision(self, version: str, decision: PromotionDecision, result) -> None:
        tags = {
            "promotion_decision": decision.decision,
            "promotion_reason": decision.reason,
            **{f"gate_{key}": "" if value is None else repr(value) for key, value in decision.numbers.items()},
            "beats_prior": str(decision.challenger_beats_prior).lower(),
            "heldout_start": str(result.heldout_range[0]),
            "heldout_end": str(result.heldout_range[1]),
            "validated_from": str(result.heldout_range[0]),
            "validated_until": str(result.heldout_range[1]),
            "prior_up_share": repr(float(result.heldout["prior_up_probability"].iloc[0])),
            "data_fingerprint": result.fingerprint,
        }
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, version, key, value)


def _log_out_of_sample(result: WalkForwardResult) -> None:
    with tempfile.TemporaryDirectory() as directory:
        for artifact, frame in (
            (OUT_OF_SAMPLE_ARTIFACT, result.out_of_sample),
            (THRESHOLD_EVIDENCE_ARTIFACT, result.threshold_evidence),
        ):
            path = Path(directory) / Path(artifact).name
            frame.to_parquet(path, index=False)
            mlflow.log_artifact(str(path), artifact_path=str(Path(artifact).parent))


def _now_ms() -> int:
    return int(time.time() * 1000)


def ensure_experiment(tracking_uri: str | None, name: str, artifact_location: str) -> str:
    """The id of experiment ``name``, created with ``artifact_location`` as its artifact root if missing."""
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":  # another process created it meanwhile
            raise
        return client.get_experiment_by_name(name).experiment_id


def load_champion(name: str = DEFAULT_MODEL_NAME, tracking_uri: str | None = None):
    """The champion of ``name`` from the given (or the currently configured) tracking store."""
    uri = tracking_uri or mlflow.get_tracking_uri()
    return ModelRegistry(uri, "", model_name=name).load_champion()


def _log_evaluation(result: WalkForwardResult, margin: float) -> bytes:
    """Params, data facts, metrics (baselines beside the model), features and charts.

    Returns the feature-importance PNG so the model card need not draw it again.
    """
    mlflow.log_params(
        {
            **{f"config_{key}": value for key, value in asdict(result.config).items()},
            "promotion_margin": margin,
            "train_start": str(result.training_range[0]),
            "train_end": str(result.training_range[1]),
            "heldout_start": str(result.heldout_range[0]),
            "heldout_end": str(result.heldout_range[1]),
            "data_fingerprint": result.fingerprint,
            "feature_columns": ",".join(result.feature_columns),
            **{f"rows_{key}": value for key, value in result.row_counts.items()},
        }
    )
    metrics = {
        "training_seconds": result.training_seconds,
        "best_iteration": float(getattr(result.model, "best_iteration", -1) or -1),
    }
    for prefix, by_model in [
        ("", result.overall),
        ("heldout_", result.heldout_metrics),
        *[(f"fold_{fold.index}_", fold.metrics) for fold in result.folds],
    ]:
        for model, scores in by_model.items():
            for metric in METRIC_NAMES:
                metrics[f"{prefix}{model}_{metric}"] = getattr(scores, metric)
    mlflow.log_metrics(metrics)
    mlflow.log_dict({"feature_columns": list(result.feature_columns)}, "features.json")
    importance_png = feature_importance_png(result)
    with tempfile.TemporaryDirectory() as directory:
        for name, png in [("feature_importance.png", importance_png), ("calibration.png", calibration_png(result))]:
            path = Path(directory) / name
            path.write_bytes(png)
            mlflow.log_artifact(str(path), artifact_path="charts")
    return importance_png


# The modules the saved model needs, each with the distributions that may provide it (first
# installed wins): xgboost may come as xgboost-cpu, sklearn comes as scikit-learn.
REQUIRED_MODULES = {
    "xgboost": ("xgboost", "xgboost-cpu"),
    "pandas": ("pandas",),
    "numpy": ("numpy",),
    "sklearn": ("scikit-learn",),
}


def _pip_requirements() -> list[str]:
    """Pinned from this environment; MLflow's own inference spawns a process and takes seconds.

    Each distribution is looked up by name: ``importlib.metadata.packages_distributions()``
    reads every installed distribution's file list (about 1 s in this environment), and is only
    asked when none of a module's known distributions is installed.
    """
    pins = []
    for module, candidates in REQUIRED_MODULES.items():
        name = next((name for name in candidates if _installed_version(name)), None)
        if name is None:
            name = importlib.metadata.packages_distributions().get(module, [module])[0]
        pins.append(f"{name}=={importlib.metadata.version(name)}")
    return pins


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    """HEAD of the checkout this code runs from, if it is a git checkout with commits."""
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None
