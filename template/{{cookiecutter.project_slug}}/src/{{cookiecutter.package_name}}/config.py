"""Project configuration: one YAML file, validated before any work starts.

Every model is frozen and refuses unknown keys, so a typo in `configs/project.yaml` stops the run
with a message that names the key instead of being silently ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ProjectError
from .families import lookup

Task = Literal["binary_classification", "multiclass_classification", "regression"]
# Where credentials live: environment variables (CI secrets, a deployment's env), named here.
ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
PREDICTION_LOG_URL_ENV = "PREDICTION_LOG_URL"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
# A model family's kind: the name of its module in `families/`, checked against that registry.
ModelFamily = str


class ConfigError(ProjectError, ValueError):
    """A configuration file is missing, unreadable or invalid."""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DemoSourceConfig(Frozen):
    """The built-in synthetic source: deterministic for a seed, with knobs to inject drift."""

    kind: Literal["demo"] = "demo"
    rows: int = Field(default=20_000, ge=200)
    seed: int = 7
    start: date = date(2025, 1, 1)
    days: int = Field(default=180, ge=7)
    covariate_shift: float = Field(default=0.0, ge=0.0, le=3.0)
    concept_shift: float = Field(default=0.0, ge=0.0, le=1.0)
    invalid_fraction: float = Field(default=0.005, ge=0.0, lt=0.5)


class FileSourceConfig(Frozen):
    """A CSV or Parquet file described by a schema file.

    `path` is text, not a `Path`: it is a local path (relative to the project, or absolute) or
    an fsspec URL such as `s3://bucket/events.parquet`, whose `//` a `Path` would collapse.
    """

    kind: Literal["file"] = "file"
    path: str = Field(
        min_length=1, description="a local path, or an fsspec URL: s3://, gs://, file://, ..."
    )
    schema_path: Path
    delimiter: str | None = Field(
        default=None, description="a CSV file's one-character separator; None: detected"
    )

    @model_validator(mode="after")
    def _known_format(self) -> FileSourceConfig:
        # A URL's last segment is a file name like a path's: memory://events.csv ends in .csv.
        name = Path(self.path).name
        if Path(name).suffix.lower() not in {".csv", ".parquet"}:
            raise ValueError(f"path must end in .csv or .parquet, got {name!r}")
        if self.delimiter is not None and (len(self.delimiter) != 1 or self.delimiter in '"\r\n'):
            raise ValueError(
                f"delimiter must be one character, not a quote or line break: {self.delimiter!r}"
            )
        return self


class SqlSourceConfig(Frozen):
    """Rows from a SQL query. The database's SQLAlchemy URL carries credentials, so it is read
    from the environment variable named here, never from this file."""

    kind: Literal["sql"] = "sql"
    url_env: str = Field(
        default="TRAINING_DATA_URL",
        pattern=ENV_NAME,
        description="the environment variable holding the SQLAlchemy URL, password included",
    )
    query: str = Field(
        min_length=1, pattern=r"\S", description="one SELECT; its columns are the schema's"
    )
    schema_path: Path


SourceConfig = Annotated[
    DemoSourceConfig | FileSourceConfig | SqlSourceConfig, Field(discriminator="kind")
]


SplitStrategy = Literal["time", "random", "group"]


class SplitConfig(Frozen):
    """How the valid rows are cut into train, validation and holdout (docs/data.md, "Splits").

    `time` cuts at two timestamps, the newest rows last: the model is judged on rows later than
    any it learned from, so the holdout measures drift over time too. `random` draws rows,
    stratified by class for a classifier; `group` draws whole entities (the values of
    `group_column`), so no entity is in two splits. Both are for tables whose row order says
    nothing about what is predicted (a survey, a table sorted by its label) and lose the
    judged-on-later-rows property. Both place each row or entity by a seeded hash of its name,
    not by shuffling, so a row keeps its split as the table grows.
    """

    strategy: SplitStrategy = Field(
        default="time", description="time, random (stratified for classifiers) or group"
    )
    validation_fraction: float = Field(default=0.15, gt=0.0, lt=0.5)
    holdout_fraction: float = Field(default=0.15, gt=0.0, lt=0.5)
    group_column: str | None = Field(
        default=None,
        min_length=1,
        description="group: the entity column no two splits share; None: the schema's id column",
    )
    seed: int = Field(
        default=0, description="random and group: the seed of the hash that places rows"
    )


class DataConfig(Frozen):
    source: SourceConfig
    split: SplitConfig = SplitConfig()
    min_training_rows: int = Field(default=500, ge=10, description="rows in the training split")
    min_class_rows: int = Field(
        default=2, ge=1, description="classifiers: rows of each class every split must hold"
    )


class LeakageConfig(Frozen):
    """When training refuses the data: a feature that would not exist at prediction time, or
    is the label in disguise, makes a model that looks perfect and then fails in production.

    Rows shared by training and holdout leak only beyond what the data's own repetition
    explains (train/leakage.py says how it is measured): `max_excess_share` is the margin that
    excess must also pass, 1 point by default, so that a few stray copies in a large table do
    not stop the loop; 1.0 turns the rule off.
    """

    threshold: float = Field(
        default=0.995,
        gt=0.5,
        le=1.0,
        description="a feature alone scoring at least this on validation leaks "
        "(ROC AUC for classifiers, R² for regressors)",
    )
    max_excess_share: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="share of holdout rows equal to a training row (features and target), "
        "beyond the share the validation split's rows explain, above which a significant "
        "excess leaks",
    )
    allow: dict[str, Annotated[str, Field(pattern=r"\S")]] = Field(
        default_factory=dict,
        description="feature -> why it may stay although it leaks; recorded on the run",
    )


class TrainConfig(Frozen):
    task: Task
    model_family: ModelFamily = Field(description="a family registered in families/")
    params: dict[str, float | int | str | bool | None] = Field(default_factory=dict)
    primary_metric: str
    slice_column: str | None = None
    calibration: Literal["sigmoid", "isotonic", "none"] = "sigmoid"
    seed: int = 42
    warm_start: bool = Field(
        default=False,
        description="continue from the champion where the family allows it, else from scratch",
    )
    leakage: LeakageConfig = LeakageConfig()
    compiled_scoring: bool = Field(
        default=True,
        description="compile each registered version for fast scoring, verified against "
        "scikit-learn on the holdout; false registers the scikit-learn model only",
    )

    @field_validator("model_family")
    @classmethod
    def _registered_family(cls, kind: str) -> str:
        lookup(kind)  # FamilyError, a ValueError, names the known families
        return kind

    @model_validator(mode="after")
    def _family_trains_task(self) -> TrainConfig:
        family = lookup(self.model_family)
        if self.task not in family.estimators:
            raise ValueError(
                f"model_family {self.model_family!r} has no estimator for {self.task}; "
                f"it trains {', '.join(family.estimators)}"
            )
        return self

    @model_validator(mode="after")
    def _metric_fits_task(self) -> TrainConfig:
        from .metrics import METRICS  # numpy: imported when a config is read, not on --help

        if self.primary_metric not in METRICS[self.task]:
            raise ValueError(
                f"primary_metric {self.primary_metric!r} is not a {self.task} metric; "
                f"choose one of {sorted(METRICS[self.task])}"
            )
        return self


class GuardrailsConfig(Frozen):
    """What the challenger must not make worse, whatever its primary metric says."""

    metrics: dict[str, float] = Field(
        default_factory=dict,
        description="metric -> non-inferiority margin: the challenger may be worse by at most this",
    )
    latency_ms_per_row: float | None = Field(default=None, gt=0.0)
    slice_margin: float | None = Field(default=None, ge=0.0)
    min_slice_rows: int = Field(default=100, ge=10)


class OnlineConfig(Frozen):
    """The live experiment: `shadow` scores the challenger unseen, `canary` serves it to a share."""

    mode: Literal["off", "shadow", "canary"] = "off"
    canary_share: float = Field(default=0.1, gt=0.0, lt=1.0)
    alpha: float = Field(default=0.05, gt=0.0, lt=0.5)
    min_samples_per_variant: int = Field(default=500, ge=10)


class PromotionConfig(Frozen):
    """The A/B gate: a challenger replaces the champion only on significant, guarded evidence."""

    primary_metric: str | None = Field(default=None, description="defaults to train.primary_metric")
    test: Literal["paired_bootstrap", "paired_t", "wilcoxon", "mcnemar"] = "paired_bootstrap"
    alpha: float = Field(default=0.05, gt=0.0, lt=0.5)
    min_effect: float = Field(default=0.0, ge=0.0)
    min_holdout_rows: int = Field(
        default=500,
        ge=10,
        description="the fewest rows of evidence the gate compares on: the holdout's rows, plus "
        "labelled shadow rows with shadow_evidence; fewer is too little evidence",
    )
    shadow_evidence: bool = Field(
        default=True,
        description="count labelled shadow rows (the current champion and challenger versions, "
        "both scored on one request in online.mode shadow, its label sent to /feedback) as "
        "evidence beside the holdout; false: the holdout alone",
    )
    resamples: int = Field(default=2_000, ge=100)
    seed: int = 0
    guardrails: GuardrailsConfig = GuardrailsConfig()
    online: OnlineConfig = OnlineConfig()


class ServeConfig(Frozen):
    """The online service. The API key is read from the environment, never from this file."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65_535)
    max_batch_rows: int = Field(default=1_000, ge=1)
    max_body_bytes: int = Field(default=2_000_000, ge=1_024)
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0.0,
        description="a client must send a request's headers within this long of connecting (or "
        "of its first byte after an answer), else the connection is closed",
    )
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0.0,
        description="a request's whole body must arrive within this long of its headers, else "
        "it gets a 408 and the connection is closed",
    )
    keep_alive_seconds: int = Field(
        default=5, ge=1, description="an idle keep-alive connection is closed after this long"
    )
    max_connections: int = Field(
        default=1_000,
        ge=1,
        description="beyond this many open connections (or requests in flight) a request gets a "
        "503; keep it under the process's open-file limit (ulimit -n)",
    )
    registry_poll_seconds: float = Field(default=10.0, gt=0.0)
    flush_seconds: float = Field(
        default=1.0, gt=0.0, description="prediction log writes: a crash loses at most this much"
    )
    require_api_key: bool = False
    api_key_env: str = Field(default="SERVICE_API_KEY", pattern=ENV_NAME)
    api_docs: Literal["with_key", "open", "hidden"] = Field(
        default="with_key",
        description="/docs and /openapi.json: behind X-API-Key whenever the service needs one "
        "(with_key), open to anyone (open), or not served (hidden: `off` would read as false)",
    )
    log_buffer_rows: int = Field(
        default=50_000,
        ge=100,
        description="log rows held while the log's database is unreachable; beyond this the "
        "oldest are dropped and counted",
    )
    ready_while_log_fails: Literal["degraded", "not_ready"] = Field(
        default="degraded",
        description="/ready while prediction-log writes fail: 200 with status degraded and the "
        "reason (degraded), or 503 (not_ready, for replicas with a log each, so traffic moves to "
        "one that can log)",
    )
    scoring: Literal["compiled", "scikit-learn"] = Field(
        default="compiled",
        description="the service and batch-predict score with a version's verified compiled "
        "form where it has one; scikit-learn always uses the model itself",
    )
    extra_columns: Literal["ignore", "refuse"] = Field(
        default="ignore",
        description="a request's fields the schema does not declare (a column `schema infer` "
        "left out, say): ignored and counted in /metrics, as ingest and batch-predict ignore "
        "them (ignore), or a 422 naming each (refuse)",
    )
    unseen_categories: Literal["score", "refuse"] = Field(
        default="score",
        description="a category the schema does not list: scored as the fitted pipeline scores "
        "an unknown (it lights no one-hot column) and counted as out of domain in /metrics and "
        "by monitor (score), or a 422 listing the known ones (refuse)",
    )


class MonitorConfig(Frozen):
    """When live data stops looking like the champion's training data, or it performs worse."""

    reference: Literal["unseen", "training"] = Field(
        default="unseen",
        description="what the live window is compared with: the champion's snapshot rows its fit "
        "never saw (validation and holdout), or its training split",
    )
    drift_share: float = Field(default=0.3, gt=0.0, le=1.0)
    method: str | None = Field(default=None, description="Evidently stat test; None: by type")
    threshold: float | None = Field(default=None, gt=0.0)
    min_window_rows: int = Field(default=200, ge=10)
    window_days: int = Field(default=7, ge=1)
    performance_drop: float = Field(
        default=0.05, ge=0.0, description="relative: 0.05 means 5% worse than at training"
    )
    max_missing_increase: float = Field(default=0.1, ge=0.0, le=1.0)
    max_out_of_range_share: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="out of domain: a number outside the reference range, or a category the "
        "schema does not list (served under serve.unseen_categories: score)",
    )


class TrackingConfig(Frozen):
    """Where runs and models go. `MLFLOW_TRACKING_URI` overrides the embedded SQLite store."""

    experiment: str = Field(min_length=1)
    registered_model: str = Field(min_length=1)


class PathsConfig(Frozen):
    data_dir: Path = Path("data")
    reports_dir: Path = Path("reports")
    logs_dir: Path = Path("logs")


class ProjectConfig(Frozen):
    data: DataConfig
    train: TrainConfig
    promotion: PromotionConfig = PromotionConfig()
    serve: ServeConfig = ServeConfig()
    monitor: MonitorConfig = MonitorConfig()
    tracking: TrackingConfig
    paths: PathsConfig = PathsConfig()

    @model_validator(mode="after")
    def _promotion_fits_task(self) -> ProjectConfig:
        from .metrics import METRICS

        known = METRICS[self.train.task]
        policy = self.promotion
        named = [policy.primary_metric, *policy.guardrails.metrics]
        if unknown := sorted(m for m in named if m is not None and m not in known):
            raise ValueError(
                f"promotion names metrics that {self.train.task} does not have: {unknown}; "
                f"choose from {sorted(known)}"
            )
        if policy.test == "mcnemar" and self.train.task != "binary_classification":
            raise ValueError(
                "promotion.test mcnemar compares a binary classifier's correctness: use another"
            )
        return self

    @property
    def gate_metric(self) -> str:
        return self.promotion.primary_metric or self.train.primary_metric


@dataclass(frozen=True)
class Project:
    """A validated configuration and its folder, against which every relative path resolves."""

    root: Path
    config: ProjectConfig
    config_path: Path | None = None

    def path(self, relative: Path | str) -> Path:
        candidate = Path(relative)
        return candidate if candidate.is_absolute() else self.root / candidate

    def shown(self, path: Path) -> str:
        """A path as messages show it: relative to the project when it is inside it."""
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)

    @property
    def config_name(self) -> str:
        """The configuration file, as messages name it."""
        return self.shown(self.config_path) if self.config_path else "the configuration"

    @property
    def snapshots_dir(self) -> Path:
        return self.path(self.config.paths.data_dir) / "snapshots"

    @property
    def quarantine_dir(self) -> Path:
        return self.path(self.config.paths.data_dir) / "quarantine"

    @property
    def reports_dir(self) -> Path:
        return self.path(self.config.paths.reports_dir)

    @property
    def promotion_reports_dir(self) -> Path:
        """Decision records: `<stamp>-<kind>.json` and `.md`, the newest sorting last."""
        return self.reports_dir / "promotion"

    @property
    def monitor_reports_dir(self) -> Path:
        """Monitor summaries `<stamp>.json` and Evidently reports `<stamp>.html`."""
        return self.reports_dir / "monitor"

    @property
    def prediction_log_url(self) -> str:
        """The prediction log's SQLAlchemy URL: `PREDICTION_LOG_URL` (a database every replica
        shares), else a SQLite file in the logs folder."""
        local = self.path(self.config.paths.logs_dir) / "predictions.sqlite"
        return os.environ.get(PREDICTION_LOG_URL_ENV) or f"sqlite:///{local}"

    @property
    def local_store(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def artifact_root(self) -> Path:
        return self.root / "mlruns"

    @property
    def tracking_uri(self) -> str:
        return os.environ.get(TRACKING_URI_ENV) or f"sqlite:///{self.local_store}"

    @property
    def uses_local_store(self) -> bool:
        return self.tracking_uri == f"sqlite:///{self.local_store}"


class Floor(Frozen):
    """The team's minimum promotion policy (configs/governance.yaml)."""

    max_alpha: float = Field(gt=0, lt=1)
    min_holdout_rows: int = Field(ge=1)
    required_guardrails: list[str]
    max_file_bytes: int = Field(ge=1)


class Override(Frozen):
    rule: str
    reason: str = Field(min_length=20, description="a written reason, not a placeholder")


class Governance(Frozen):
    floor: Floor
    overrides: list[Override] = Field(default_factory=list)

    def floor_of(self, rule: str) -> Any:
        """The floor's value for `rule`, or None when an override has lifted it."""
        return None if rule in {o.rule for o in self.overrides} else getattr(self.floor, rule)


GOVERNANCE = Path("configs") / "governance.yaml"


def load_governance(root: Path) -> Governance | None:
    """The team's floor, or None for a project without configs/governance.yaml."""
    path = root / GOVERNANCE
    if not path.is_file():
        return None
    try:
        return Governance.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, ValidationError) as error:
        raise ConfigError(f"{GOVERNANCE} is invalid: {error}") from None


# Keys renamed by a template release: `copier update` migrates them in the files under
# configs/; anything else still holding an old name gets this hint instead of a bare "unknown".
RENAMED_KEYS = {
    "serve.reload_seconds": "serve.registry_poll_seconds (renamed in template version 0.2.0)",
    "train.leakage.max_shared_share": "train.leakage.max_excess_share, a margin over the "
    "repetition the training split itself shows rather than a cap on every repeated row "
    "(changed after template version 0.2.0)",
}


def explain(error: ValidationError) -> str:
    """One line per invalid field, so the message names exactly what to fix."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            renamed = RENAMED_KEYS.get(where)
            message = f"unknown key; it is now {renamed}" if renamed else "unknown key"
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def parse_config(raw: Any, source: str = "configuration") -> ProjectConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return ProjectConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"{source} is invalid:\n{explain(error)}") from None


def find_root(config: Path) -> Path:
    """The project's folder, found from its own files (`pyproject.toml`, or `configs/project.yaml`):
    first above the configuration file, then above the working directory. A configuration kept
    elsewhere therefore still works on the project it is run in."""
    for start in (config.parent, Path.cwd().resolve()):
        for folder in (start, *start.parents):
            if (folder / "pyproject.toml").is_file() or (folder / DEFAULT_CONFIG).is_file():
                return folder
    raise ConfigError(
        f"{config}: no project folder (one with pyproject.toml or {DEFAULT_CONFIG}) above it "
        "or above the working directory"
    )


DEFAULT_CONFIG = Path("configs") / "project.yaml"


def load_project(config_path: Path | str = DEFAULT_CONFIG) -> Project:
    """Read and validate the config; the project root is found by `find_root`."""
    path = Path(config_path).resolve()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{config_path}: no such file") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{config_path}: not valid YAML: {error}") from None
    config = parse_config(raw, str(config_path))
    return Project(root=find_root(path), config=config, config_path=path)
