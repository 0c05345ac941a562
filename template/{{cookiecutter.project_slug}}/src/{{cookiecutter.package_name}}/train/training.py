"""Fit a baseline and the configured model on a snapshot, evaluate, log the run, register.

The new version gets the `challenger` alias and nothing else: only the promotion gate moves
`champion`, the very first one included.
"""

from __future__ import annotations

import math
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import skops.io
from mlflow.data.pandas_dataset import from_pandas
from mlflow.models import infer_signature
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

from ..config import ModelFamily, Project
from ..data import PARTS, Snapshot, read_snapshot, require_training_rows
from ..errors import ProjectError
from ..families import BASELINE, Family, Params, lookup
from ..features import model_input
from ..metrics import class_recalls, compute_metrics, metric, predict_scores, slice_metrics
from ..scoring import Verification, write_scorer
from ..store import CHALLENGER, CHAMPION, SNAPSHOT_PATH, Run, Store
from .leakage import LeakageError, LeakageReport, check_leakage
from .models import build_model, continue_fitting
from .plots import evaluation_figures

AMBIGUOUS_SOURCE = "The specified dataset source can be interpreted in multiple ways"

PIP_REQUIREMENTS = ["scikit-learn", "pandas", "numpy", "scipy", "skops"]
# Every saved model holds the features and the calibration: scikit-learn's and numpy's types.
TRUSTED_MODULES = ("sklearn", "numpy")


class TrainingError(ProjectError, RuntimeError):
    """Training ran but produced nothing worth registering; the registry is left as it was."""


@dataclass(frozen=True)
class Evaluation:
    holdout: dict[str, float]
    validation: dict[str, float]
    baseline_holdout: dict[str, float]
    slices: dict[str, dict[str, float]]
    beats_baseline: bool
    class_recall: dict[str, float]  # three or more classes: each class's recall on the holdout


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    model_name: str
    version: str
    family: ModelFamily
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    snapshot_id: str
    scoring: str  # how the version will be scored, and the verification that decided it


def family_params(project: Project, family: ModelFamily) -> Params:
    """`train.params` belong to the configured family; any other family trains on its own."""
    settings = project.config.train
    return settings.params if family == settings.model_family else {}


def champion_pipeline(
    project: Project, store: Store, family: ModelFamily
) -> tuple[str, Pipeline] | None:
    """The champion's fitted pipeline (without calibration) when its family can continue it."""
    champion = store.alias_version(CHAMPION)
    if champion is None or champion.tags.get("model_family") != family:
        return None
    model = store.load_version(str(champion.version))
    if isinstance(model, CalibratedClassifierCV):
        model = model.estimator
    if isinstance(model, FrozenEstimator):
        model = model.estimator
    if not isinstance(model, Pipeline):
        return None
    task, params = project.config.train.task, family_params(project, family)
    if lookup(family).continuing(task, model.named_steps["model"], params) is None:
        return None
    return str(champion.version), model


def fit_model(
    project: Project, snapshot: Snapshot, family: ModelFamily, warm_from: Pipeline | None = None
) -> Any:
    """Fit on train; classifiers are then calibrated on validation, which the fit never saw
    (three or more classes: each class against the rest, then normalised to sum to one)."""
    settings = project.config.train
    schema = snapshot.schema
    params = family_params(project, family)
    target = schema.target.name
    rows = model_input(snapshot.train, schema)
    if warm_from is not None:
        model = continue_fitting(
            warm_from, rows, snapshot.train[target], lookup(family), settings.task, params
        )
    else:
        model = build_model(schema, settings.task, lookup(family), params, settings.seed)
        model.fit(rows, snapshot.train[target])
    if settings.task != "regression" and settings.calibration != "none":
        calibrated = CalibratedClassifierCV(FrozenEstimator(model), method=settings.calibration)
        return calibrated.fit(model_input(snapshot.validation, schema), snapshot.validation[target])
    return model


def _evaluate(
    project: Project, snapshot: Snapshot, model: Any, baseline: Any
) -> tuple[Evaluation, np.ndarray]:
    """Metrics of the model and the baseline, and the model's holdout scores (for the plots)."""
    settings = project.config.train
    schema = snapshot.schema

    def scored(estimator: Any, part: str) -> tuple[dict[str, float], Any, Any]:
        frame = getattr(snapshot, part)
        truth = frame[schema.target.name].to_numpy(dtype=float)
        scores = predict_scores(estimator, model_input(frame, schema), settings.task)
        return compute_metrics(settings.task, truth, scores), truth, scores

    holdout, truth, scores = scored(model, "holdout")
    baseline_holdout = scored(baseline, "holdout")[0]
    slices = {}
    if settings.slice_column:
        slices = slice_metrics(
            settings.task, truth, scores, snapshot.holdout[settings.slice_column]
        )
    recall = {}
    if schema.target.is_multiclass:
        recall = class_recalls(truth, scores, schema.target.classes or ())
    primary = metric(settings.task, settings.primary_metric)
    value = holdout[primary.name]
    better = primary.improvement(baseline_holdout[primary.name], value) > 0
    evaluation = Evaluation(
        holdout=holdout,
        validation=scored(model, "validation")[0],
        baseline_holdout=baseline_holdout,
        slices=slices,
        beats_baseline=better and not math.isnan(value),
        class_recall=recall,
    )
    return evaluation, scores


def _log_lineage(run: Run, project: Project, snapshot: Snapshot, family: ModelFamily) -> None:
    """What the run trained on and how: data digests and datasets, task, family, params."""
    settings = project.config.train
    schema = snapshot.schema
    params = family_params(project, family)
    run.set_tags({"stage": "train", "model_family": family, "snapshot_id": snapshot.snapshot_id})
    run.log_params(
        {
            "task": settings.task,
            "model_family": family,
            "seed": settings.seed,
            "calibration": settings.calibration if settings.task != "regression" else "n/a",
            "snapshot_id": snapshot.snapshot_id,
            "split_strategy": snapshot.split["strategy"],
            "features": ",".join(schema.feature_columns),
            **{f"{part}_sha256": snapshot.digest(part) for part in PARTS},
            **{f"rows_{part}": len(getattr(snapshot, part)) for part in PARTS},
            **{f"param_{key}": value for key, value in params.items()},
        }
    )
    for part in PARTS:
        with warnings.catch_warnings():
            # MLflow registers its local-file source once per scheme ("" and "file") and then
            # warns, on every dataset, that a path "can be interpreted in multiple ways": both
            # are the same class of source, so the warning tells the user nothing.
            warnings.filterwarnings("ignore", message=AMBIGUOUS_SOURCE, category=UserWarning)
            dataset = from_pandas(
                getattr(snapshot, part),
                source=str(snapshot.path(part).relative_to(project.root)),
                targets=schema.target.name,
                name=f"{snapshot.snapshot_id}/{part}",
                digest=snapshot.digest(part)[:16],
            )
        run.log_dataset(dataset, context=part)


def _log_leakage(run: Run, report: LeakageReport) -> None:
    """The leakage check's figures, whatever it found, and the reason for each allowed feature."""
    run.log_params(
        {"leakage_threshold": report.threshold, "leakage_max_excess_share": report.max_excess_share}
    )
    run.set_tags(
        {
            "leakage": report.summary,
            **{f"leakage_allowed.{_metric_key(name)}": why for name, why in report.allow.items()},
        }
    )
    run.log_metrics(
        {
            **{
                f"leakage_score_{_metric_key(name)}": value for name, value in report.scores.items()
            },
            **{
                f"leakage_one_label_share_{_metric_key(name)}": value
                for name, value in report.one_label_shares.items()
            },
            "leakage_shared_rows": report.repeats.shared_rows,
            "leakage_shared_share": report.repeats.shared_share,
            "leakage_validation_shared_share": report.repeats.validation_shared_share,
            "leakage_expected_shared_share": report.repeats.expected_shared_share,
            "leakage_excess_share": report.repeats.excess_share,
            "leakage_excess_p_value": report.repeats.p_value,
        }
    )
    run.log_dict(report.as_dict(), "leakage.json")


def _log_run(
    run: Run,
    project: Project,
    snapshot: Snapshot,
    family: ModelFamily,
    evaluation: Evaluation,
    holdout_scores: np.ndarray,
    fit_seconds: float,
) -> None:
    """Everything a reviewer needs to trust the run: data digests, params, metrics, plots."""
    settings = project.config.train
    schema = snapshot.schema
    _log_lineage(run, project, snapshot, family)
    run.set_tags({"beats_baseline": str(evaluation.beats_baseline)})
    metrics = {
        **{f"holdout_{key}": value for key, value in evaluation.holdout.items()},
        **{f"validation_{key}": value for key, value in evaluation.validation.items()},
        **{f"baseline_holdout_{key}": value for key, value in evaluation.baseline_holdout.items()},
        **{
            f"slice_{_metric_key(name)}_{key}": value
            for name, figures in evaluation.slices.items()
            for key, value in figures.items()
        },
        **{
            f"holdout_recall_{_metric_key(name)}": value
            for name, value in evaluation.class_recall.items()
        },
        "fit_seconds": fit_seconds,
    }
    run.log_metrics(metrics)
    truth = snapshot.holdout[schema.target.name].to_numpy(dtype=float)
    for name, figure in evaluation_figures(settings.task, truth, holdout_scores).items():
        run.log_figure(figure, f"plots/{name}")
    run.log_dict(asdict(evaluation) | {"slice_column": settings.slice_column}, "evaluation.json")


def _register(
    store: Store,
    run: Run,
    snapshot: Snapshot,
    family: ModelFamily,
    model: Any,
    evaluation: Evaluation,
) -> tuple[str, Verification]:
    """Log the model (with its verified compiled form), register it, tag the version with its
    lineage and scoring path, make it the challenger."""
    settings = store.project.config.train
    example = model_input(snapshot.holdout.head(5), snapshot.schema)
    classify = settings.task != "regression"
    output = model.predict_proba(example) if classify else model.predict(example)
    with tempfile.TemporaryDirectory() as extra:
        verification = write_scorer(
            model,
            snapshot.holdout,
            snapshot.schema,
            settings.task,
            Path(extra),
            enabled=settings.compiled_scoring,
            family=lookup(family),
        )
        run.log_model(
            model,
            extra_files=Path(extra),
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=_requirements(lookup(family)),
            skops_trusted_types=_trusted_types(model, lookup(family)),
            pyfunc_predict_fn="predict_proba" if classify else "predict",
        )
    run.log_folder(snapshot.directory, SNAPSHOT_PATH)
    version = store.register(run)
    primary = settings.primary_metric
    store.tag_version(
        version,
        {
            "snapshot_id": snapshot.snapshot_id,
            "train_sha256": snapshot.digest("train"),
            "model_family": family,
            "trained_at": datetime.now(UTC).isoformat(),
            "run_id": run.run_id,
            f"holdout_{primary}": f"{evaluation.holdout[primary]:.6f}",
            **verification.tags(),
        },
    )
    store.set_alias(CHALLENGER, version)
    return version, verification


def _trusted_types(model: Any, family: Family) -> list[str]:
    """skops loads only types it is told to trust: we trust those scikit-learn and numpy define,
    and those the family names (its library's modules, or single types)."""
    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    return [
        name for name in untrusted if name.split(".")[0] in TRUSTED_MODULES or family.trusts(name)
    ]


def _requirements(family: Family) -> list[str]:
    """What loading the model needs: the base requirements, then the family's own."""
    return [*PIP_REQUIREMENTS, *(r for r in family.requirements if r not in PIP_REQUIREMENTS)]


def _metric_key(value: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in value)


def train(
    project: Project, family: ModelFamily | None = None, snapshot_id: str | None = None
) -> TrainResult:
    """Train, evaluate on the holdout, log everything to MLflow and register the challenger.

    A model that does not beat the baseline on the primary metric is logged but not registered;
    data that leaks the target (see `leakage.py`) is refused before fitting, with LeakageError.
    """
    family = family or project.config.train.model_family
    lookup(family)  # an unknown family is refused before any work, naming the known ones
    snapshot = read_snapshot(project.snapshots_dir, snapshot_id)
    require_training_rows(project, len(snapshot.train), f" (snapshot {snapshot.snapshot_id})")
    leakage = check_leakage(
        snapshot.train,
        snapshot.validation,
        snapshot.holdout,
        schema=snapshot.schema,
        task=project.config.train.task,
        config=project.config.train.leakage,
    )
    store = Store.open(project)
    if not leakage.passed:
        # Refused before fitting; the run ends FAILED, with the figures that explain why.
        with store.run(f"train-{family}") as run:
            _log_lineage(run, project, snapshot, family)
            _log_leakage(run, leakage)
            run.set_tags({"outcome": "rejected: leakage"})
            raise LeakageError(leakage)
    warm = champion_pipeline(project, store, family) if project.config.train.warm_start else None
    started = time.perf_counter()
    model = fit_model(project, snapshot, family, warm_from=warm[1] if warm else None)
    fit_seconds = time.perf_counter() - started
    evaluation, holdout_scores = _evaluate(
        project, snapshot, model, fit_model(project, snapshot, BASELINE)
    )

    with store.run(f"train-{family}") as run:
        _log_run(run, project, snapshot, family, evaluation, holdout_scores, fit_seconds)
        _log_leakage(run, leakage)
        run.set_tags({"warm_started_from": f"v{warm[0]}" if warm else "none"})
        if not evaluation.beats_baseline and family != BASELINE:
            run.set_tags({"outcome": "rejected: does not beat the baseline"})
            primary = project.config.train.primary_metric
            raise TrainingError(
                f"{family} scored {primary}={evaluation.holdout[primary]:.4f} on the holdout, "
                f"not better than the baseline's {evaluation.baseline_holdout[primary]:.4f}; "
                "nothing was registered"
            )
        version, verification = _register(store, run, snapshot, family, model, evaluation)
        run.set_tags({"outcome": "challenger", "scoring": verification.scoring})
    return TrainResult(
        run_id=run.run_id,
        model_name=store.model_name,
        version=version,
        family=family,
        metrics=evaluation.holdout,
        baseline_metrics=evaluation.baseline_holdout,
        snapshot_id=snapshot.snapshot_id,
        scoring=verification.summary(),
    )
