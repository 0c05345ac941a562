"""Ingest raw rows, quarantine invalid ones with reasons, split them, write a snapshot.

Every refusal names the setting that changes it and the file it lives in, and a snapshot is
only written when each split can do its job: train a model, calibrate it, and judge it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..config import ConfigError, Project, load_governance
from .demo import demo_schema
from .schema import ColumnSpec, DataSchema, shown_value
from .snapshot import Snapshot, content_hash, read_snapshot, write_snapshot
from .sources import DataError, load_source, write_table
from .split import Split, describe, group_candidates, group_column, split_rows
from .validation import validate


@dataclass(frozen=True)
class IngestResult:
    snapshot: Snapshot
    rows_read: int
    rows_valid: int
    rows_quarantined: int
    quarantine_file: Path | None
    ignored_columns: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)


def project_schema(project: Project) -> DataSchema:
    """The schema of the project's source as its task reads it, without reading any data."""
    source = project.config.data.source
    task = project.config.train.task
    if source.kind == "demo":
        schema, where = demo_schema(task), "the demo's schema"
    else:
        # Any other source, a file or a SQL query, is described by its schema file.
        path = project.path(source.schema_path)
        try:
            schema = DataSchema.from_yaml(path).for_task(task)
        except ValueError as error:
            raise ConfigError(f"schema file {project.shown(path)}: {error}") from None
        where = project.shown(path)
        if (problem := slice_column_problem(project, schema, where)) is not None:
            raise ConfigError(problem)
    if (problem := split_column_problem(project, schema, where)) is not None:
        raise ConfigError(problem)
    return schema


def slice_column_problem(project: Project, schema: DataSchema, where: str) -> str | None:
    """Why `train.slice_column` does not fit `schema` (`where`, as shown), or None: it must name
    a categorical feature. Checked when the schema is read (at ingest, before any training) and
    said by `schema infer`, not found missing at the end of a training run: a project switched
    from the demo data to its own table keeps the demo's `region` otherwise."""
    column = project.config.train.slice_column
    if column is None or column in schema.categorical_features:
        return None
    choices = ", ".join(schema.categorical_features) or "none: the schema has no category"
    return (
        f"train.slice_column in {project.config_name} is {column!r}, which is not a "
        f"categorical feature of {where}: set it to one of them ({choices}), or remove it"
    )


def split_column_problem(project: Project, schema: DataSchema, where: str) -> str | None:
    """Why a group split cannot run on `schema` (`where`, as shown), or None: it needs an entity
    column, `data.split.group_column` or else the schema's id column. Checked when the schema is
    read, like `train.slice_column`, and said by `schema infer`."""
    split = project.config.data.split
    if split.strategy != "group":
        return None
    candidates = group_candidates(schema)
    choices = ", ".join(candidates) or (
        "none: the schema has no id, categorical or whole-number column"
    )
    column = group_column(split, schema)
    if column is None:
        return (
            f"data.split.strategy in {project.config_name} is group, but data.split.group_column "
            f"is not set and {where} has no id column to group by: set data.split.group_column "
            f"to the column that names each entity ({choices}), or name the id when inferring "
            "the schema (schema infer --id COLUMN)"
        )
    if column in candidates:
        return None
    role = next((c.role for c in schema.columns if c.name == column), None)
    what = {
        "target": f"the target of {where}",
        "timestamp": f"the timestamp of {where}",
        "numeric": f"a numeric column of {where} that is not whole numbers",
    }.get(role or "", f"not a column of {where}")
    return (
        f"data.split.group_column in {project.config_name} is {column!r}, {what}: set it to "
        f"the column that names each entity ({choices})"
    )


def require_training_rows(project: Project, rows: int, details: str = "") -> None:
    """`data.min_training_rows` against the rows of the training split: the one place the
    minimum is checked, at ingest and again at train (a config may change in between)."""
    minimum = project.config.data.min_training_rows
    if rows < minimum:
        raise DataError(
            f"the training split has {rows} rows, below data.min_training_rows = {minimum} in "
            f"{project.config_name}: lower it, or bring more rows{details}"
        )


def _split_counts(split: Split, target: str) -> dict[str, dict[str, int]]:
    return {
        name: {
            f"{label:g}": int(count)
            for label, count in part[target].value_counts().sort_index().items()
        }
        for name, part in split.parts().items()
    }


def _class_counts(split: Split, target: ColumnSpec) -> dict[str, dict[str, int]]:
    """Rows of each of a multiclass target's classes (by name, every class) in each split."""
    classes = target.classes or ()
    return {
        name: {
            target.class_name(index): int((part[target.name] == index).sum())
            for index in range(len(classes))
        }
        for name, part in split.parts().items()
    }


def _check_classes(project: Project, split: Split, target: ColumnSpec, remedy: str) -> None:
    """Every class of a multiclass target in every split, at least `data.min_class_rows` rows
    of each: a model cannot learn a class its training split lacks, nor be judged on one its
    holdout lacks. The refusal names each class that falls short, where, and the settings."""
    minimum = project.config.data.min_class_rows
    counts = _class_counts(split, target)
    short = {
        part: [(name, rows) for name, rows in by_class.items() if rows < minimum]
        for part, by_class in counts.items()
    }
    if lacking := {part: classes for part, classes in short.items() if classes}:
        shown = "; ".join(
            f"class {shown_value(name)}: {rows} in {part}"
            for part, classes in lacking.items()
            for name, rows in classes
        )
        raise DataError(
            f"the {', '.join(lacking)} split(s) lack a class of {target.name} or hold fewer "
            f"than data.min_class_rows = {minimum} rows of one ({shown}). {remedy}"
        )


def _other_strategies(project: Project, schema: DataSchema) -> str:
    """How the configured strategy can leave a split one-sided, and which settings change it:
    the other strategies first, by the setting that chooses them."""
    config = project.config
    split = config.data.split
    classifier = config.train.task != "regression"
    fractions = (
        f"data.split.validation_fraction ({split.validation_fraction}) and "
        f"data.split.holdout_fraction ({split.holdout_fraction})"
    )
    minimum = " or data.min_class_rows" if classifier else ""
    random = "random (rows drawn at random" + (", stratified by class)" if classifier else ")")
    group = "group (whole entities, data.split.group_column)"
    if split.strategy == "time":
        return (
            f"Splits are cut by time (data.split.strategy: time), so a table sorted by its label"
            f"{' or a rare class' if classifier else ''} leaves a split one-sided: if the row "
            f"order says nothing about what is predicted, set data.split.strategy: {random} or "
            f"{group} in {project.config_name}; else change {fractions}{minimum}, or check "
            f"the timestamps"
        )
    if split.strategy == "random":
        return (
            f"Rows are drawn at random (data.split.strategy: random, seed {split.seed})"
            f"{', each split holding its share of each class' if classifier else ''}, so the "
            f"table holds too few rows{' of a class' if classifier else ' that differ'}: change "
            f"{fractions}{minimum} in {project.config_name}, bring more rows, or set "
            f"data.split.strategy: time or {group}"
        )
    column = group_column(split, schema)
    return (
        f"Whole {column} values are drawn (data.split.strategy: group, seed {split.seed}), so a "
        f"split holds only its entities' labels: set data.split.strategy: {random}, entities "
        f"then crossing splits, or time in {project.config_name}; or draw other entities "
        f"(data.split.seed), or change {fractions}{minimum}"
    )


def check_split(project: Project, split: Split, schema: DataSchema) -> None:
    """Each split must be able to do its job: for a classifier, hold every class (at least
    `data.min_class_rows` each); for a regressor, a target that varies. A refusal names the
    strategy that cut the splits and the others (`data.split.strategy`)."""
    target = schema.target.name
    config = project.config
    remedy = _other_strategies(project, schema)
    if config.train.task == "multiclass_classification":
        _check_classes(project, split, schema.target, remedy)
        return
    if config.train.task == "binary_classification":
        counts = _split_counts(split, target)
        minimum = config.data.min_class_rows
        short = [
            name
            for name, by_class in counts.items()
            if len(by_class) < 2 or min(by_class.values()) < minimum
        ]
        if short:
            shown = "; ".join(
                f"{name}: " + ", ".join(f"class {k}: {v}" for k, v in by_class.items())
                for name, by_class in counts.items()
            )
            raise DataError(
                f"the {', '.join(short)} split(s) lack a class or hold fewer than "
                f"data.min_class_rows = {minimum} rows of one ({shown}). {remedy}"
            )
        return
    constant = {
        name: part[target].iloc[0]
        for name, part in split.parts().items()
        if part[target].nunique() < 2
    }
    if constant:
        shown = ", ".join(
            f"{name}: every {target} is {value:g}" for name, value in constant.items()
        )
        raise DataError(
            f"the target {target} is constant in the {', '.join(constant)} split(s) ({shown}): "
            f"nothing to learn or judge there. {remedy}"
        )


def holdout_warnings(project: Project, holdout_rows: int) -> list[str]:
    """Why a later challenger cannot pass the gate on this holdout alone, if it can't, and the
    way to the rest of the evidence: labelled shadow traffic."""
    policy = project.config.promotion
    needed = policy.min_holdout_rows
    if holdout_rows >= needed:
        return []
    governance = load_governance(project.root)
    floor = governance.floor_of("min_holdout_rows") if governance else None
    lowest = (
        f"; configs/governance.yaml sets a floor of {floor} rows, so going lower needs an "
        "override there with a reason"
        if floor
        else ""
    )
    start = (
        f"the holdout has {holdout_rows} rows and the gate needs at least {needed} "
        f"(promotion.min_holdout_rows in {project.config_name})"
    )
    if not policy.shadow_evidence:
        return [
            f"{start}: no retrained challenger can be promoted until it does{lowest}. Bring "
            "more rows, raise data.split.holdout_fraction, lower promotion.min_holdout_rows, or "
            "set promotion.shadow_evidence: true to count labelled shadow traffic too"
        ]
    return [
        f"{start}: a retrained challenger is promoted only once labelled shadow traffic makes "
        f"up the other {needed - holdout_rows} rows. Serve with promotion.online.mode: shadow "
        'and send labels to /feedback; `promote` then counts them (docs/runbook.md, "A small '
        'table"). Or bring more rows, raise data.split.holdout_fraction, or lower '
        f"promotion.min_holdout_rows{lowest}"
    ]


def ingest(project: Project, now: datetime | None = None) -> IngestResult:
    """Read the source, quarantine bad rows, split them (`data.split`), check the splits, write a
    snapshot that records how it was split and what its holdout means."""
    now = now or datetime.now(UTC)
    raw, source = load_source(project)
    schema = project_schema(project)
    result = validate(raw, schema, now=now)
    snapshot_id = f"{now:%Y%m%dT%H%M%S}-{content_hash(result.valid)[:8]}"
    quarantine_file = None
    refused = ""
    if not result.quarantined.empty:
        # Written before any refusal below, so the reasons a refusal points to exist.
        quarantine_file = project.quarantine_dir / f"{snapshot_id}.parquet"
        write_table(result.quarantined, quarantine_file)
        refused = (
            f"; the {len(result.quarantined)} refused rows, each with its reason, are in "
            f"{project.shown(quarantine_file)}"
        )
    if result.valid.empty:
        raise DataError(f"no valid rows of {len(raw)}{refused}")
    settings, task = project.config.data.split, project.config.train.task
    split = split_rows(result.valid, schema, settings, task)
    require_training_rows(
        project, len(split.train), f" ({len(result.valid)} valid rows of {len(raw)}){refused}"
    )
    check_split(project, split, schema)
    warnings = holdout_warnings(project, len(split.holdout))
    times = {name: part[schema.timestamp_column] for name, part in split.parts().items()}
    described = describe(settings, schema, task)
    if column := described.get("group_column"):
        described["groups"] = {
            name: int(part[column].nunique(dropna=False)) for name, part in split.parts().items()
        }
    manifest = {
        "created_at": now.isoformat(),
        "source": source,
        "schema": schema.model_dump(mode="json"),
        "rows_read": len(raw),
        "rows_valid": len(result.valid),
        "rows_quarantined": len(result.quarantined),
        "ignored_columns": list(result.ignored_columns),
        "warnings": warnings,
        "quarantine_file": project.shown(quarantine_file) if quarantine_file else None,
        "time_ranges": {
            name: [t.min().isoformat(), t.max().isoformat()] for name, t in times.items()
        },
        "split": described,
    }
    directory = write_snapshot(project.snapshots_dir, snapshot_id, split.parts(), manifest)
    return IngestResult(
        snapshot=read_snapshot(project.snapshots_dir, directory.name),
        rows_read=len(raw),
        rows_valid=len(result.valid),
        rows_quarantined=len(result.quarantined),
        quarantine_file=quarantine_file,
        ignored_columns=result.ignored_columns,
        warnings=tuple(warnings),
    )
