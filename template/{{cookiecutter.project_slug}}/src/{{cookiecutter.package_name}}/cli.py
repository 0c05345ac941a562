"""Command line over the stages: ingest, train, promote, rollback, ab-report, and helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .config import ConfigError, DemoSourceConfig, ModelFamily, Project, load_project
from .data import DataError, demo_schema, generate_demo, ingest, write_table
from .promote.record import Decision

app = typer.Typer(
    name="{{ cookiecutter.package_name }}",
    help=__doc__,
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="Project configuration file.", show_default=True)
]
DEFAULT_CONFIG = Path("configs/project.yaml")
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Decide and record, but move no alias.")
]


@contextmanager
def step(description: str) -> Iterator[None]:
    """A spinner with elapsed time for a step that takes a while."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        progress.add_task(description, total=None)
        yield
    console.print(f"[green]done[/green] {description}")


def _open(config: Path) -> Project:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        return load_project(config)
    except ConfigError as error:
        _fail(str(error))


def _fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code=2)


@app.command("ingest")
def ingest_command(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Read the source, quarantine invalid rows, split by time, write a snapshot."""
    project = _open(config)
    try:
        with step("ingesting"):
            result = ingest(project)
    except (ConfigError, DataError) as error:
        _fail(str(error))
    table = Table(title=f"snapshot {result.snapshot.snapshot_id}")
    for column in ("read", "valid", "quarantined", "train", "validation", "holdout"):
        table.add_column(column, justify="right")
    parts = result.snapshot.manifest["parts"]
    table.add_row(
        str(result.rows_read),
        str(result.rows_valid),
        str(result.rows_quarantined),
        *(str(parts[name]["rows"]) for name in ("train", "validation", "holdout")),
    )
    console.print(table)
    if result.quarantine_file:
        console.print(
            f"[yellow]{result.rows_quarantined} rows quarantined[/yellow] with reasons in "
            f"{result.quarantine_file.relative_to(project.root)}"
        )


@app.command("train")
def train_command(
    config: ConfigOption = DEFAULT_CONFIG,
    family: Annotated[
        ModelFamily | None, typer.Option(help="Train this family instead of the configured one.")
    ] = None,
    snapshot: Annotated[
        str | None, typer.Option(help="Snapshot id; the latest by default.")
    ] = None,
) -> None:
    """Train the baseline and the model on a snapshot, log to MLflow, register the challenger."""
    from .train import TrainingError, train

    project = _open(config)
    try:
        with step("training"):
            result = train(project, family=family, snapshot_id=snapshot)
    except (ConfigError, DataError, TrainingError) as error:
        _fail(str(error))
    table = Table(title=f"{result.model_name} version {result.version} ({result.family})")
    table.add_column("holdout metric")
    table.add_column("model", justify="right")
    table.add_column("baseline", justify="right")
    for name, value in result.metrics.items():
        table.add_row(name, f"{value:.4f}", f"{result.baseline_metrics[name]:.4f}")
    console.print(table)
    role = "champion (first model)" if result.became_champion else "challenger"
    console.print(f"registered [bold]{result.model_name}[/bold] v{result.version} as {role}")


def _report(decision: Decision) -> None:
    """Print the one-sentence reason and exit with the outcome's code."""
    colour = {"promoted": "green", "rolled_back": "green", "keep_collecting": "yellow"}.get(
        decision.outcome.value, "red"
    )
    console.print(f"[{colour}]{decision.outcome.value}[/{colour}]: {decision.reason}")
    console.print(f"decision record: {decision.record_path}")
    raise typer.Exit(code=decision.outcome.exit_code)


@app.command("promote")
def promote_command(config: ConfigOption = DEFAULT_CONFIG, dry_run: DryRunOption = False) -> None:
    """Run the A/B gate: exit 0 promoted, 1 rejected, 2 error. Writes a decision record."""
    from .promote import promote

    project = _open(config)
    try:
        with step("comparing challenger and champion on the latest holdout"):
            decision = promote(project, dry_run=dry_run)
    except Exception as error:  # exit 2, never 1: 1 means "rejected" to CI
        _fail(f"the gate failed unexpectedly, the champion is unchanged: {error!r}")
    _report(decision)


@app.command("rollback")
def rollback_command(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Point `champion` back at `previous-champion`."""
    from .promote import rollback

    _report(rollback(_open(config)))


@app.command("ab-report")
def ab_report_command(
    config: ConfigOption = DEFAULT_CONFIG,
    since: Annotated[
        datetime | None, typer.Option(help="Only predictions from this instant (UTC) on.")
    ] = None,
) -> None:
    """Analyse the online experiment: exit 0 promote, 1 roll back, 3 keep collecting, 2 error."""
    from .promote.online import ab_report

    project = _open(config)
    _report(ab_report(project, since=since.replace(tzinfo=UTC) if since else None))


@app.command("serve")
def serve_command(
    config: ConfigOption = DEFAULT_CONFIG,
    host: Annotated[str | None, typer.Option(help="Overrides serve.host.")] = None,
    port: Annotated[int | None, typer.Option(help="Overrides serve.port.")] = None,
) -> None:
    """Serve the champion over HTTP (FastAPI on uvicorn)."""
    from .serve import run_server

    project = _open(config)
    try:
        run_server(project, host=host, port=port)
    except ConfigError as error:
        _fail(str(error))


@app.command("batch-predict")
def batch_predict_command(
    source: Annotated[Path, typer.Argument(help="CSV or Parquet file to score.")],
    output: Annotated[Path, typer.Argument(help="Parquet file to write.")],
    config: ConfigOption = DEFAULT_CONFIG,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows held in memory at once.")] = 50_000,
) -> None:
    """Score a file of any size with the champion, in chunks; invalid rows are quarantined."""
    from .serve import batch_predict

    project = _open(config)
    with Progress(
        SpinnerColumn(),
        TextColumn("scoring {task.completed:,} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("scoring", total=None)
        try:
            result = batch_predict(
                project,
                source,
                output,
                chunk_rows,
                on_chunk=lambda rows: progress.advance(task, rows),
            )
        except (DataError, ConfigError) as error:
            _fail(str(error))
    console.print(
        f"scored {result.rows_scored:,} of {result.rows_read:,} rows with "
        f"v{result.model_version} into {result.output}"
    )
    if result.quarantine_file:
        console.print(
            f"[yellow]{result.rows_quarantined:,} rows quarantined[/yellow] in "
            f"{result.quarantine_file}"
        )


@app.command("monitor")
def monitor_command(
    config: ConfigOption = DEFAULT_CONFIG,
    source: Annotated[
        Path | None, typer.Option(help="A CSV/Parquet file instead of the prediction log.")
    ] = None,
) -> None:
    """Check drift and performance: exit 0 ok, 1 drift, 3 performance drop, 2 error."""
    from .monitor import monitor

    project = _open(config)
    try:
        with step("comparing the current window with the training data"):
            result = monitor(project, source=source)
    except (ConfigError, DataError) as error:
        _fail(str(error))
    table = Table(title=f"monitor: {result.status}")
    table.add_column("check")
    table.add_column("value", justify="right")
    drift = result.summary.get("drift", {})
    table.add_row("rows in window", str(result.summary["current"]["rows"]))
    table.add_row("drifted feature share", f"{drift.get('drifted_share', float('nan')):.2f}")
    performance = result.summary.get("performance", {})
    if "current" in performance:
        table.add_row(
            f"{performance['metric']} now / at training",
            f"{performance['current']:.4f} / {performance['training_holdout'] or 0:.4f}",
        )
    table.add_row("retrain", "yes" if result.retrain else "no")
    console.print(table)
    for reason in result.reasons:
        console.print(f"- {reason}")
    if result.report:
        console.print(f"report: {result.report}")
    raise typer.Exit(code=result.exit_code)


@app.command("retrain")
def retrain_command(config: ConfigOption = DEFAULT_CONFIG, dry_run: DryRunOption = False) -> None:
    """Ingest, train a challenger, run the gate: exit 0 promoted, 1 rejected, 2 error."""
    from .retrain import retrain

    project = _open(config)
    try:
        with step("retraining: ingest, train, gate"):
            decision = retrain(project, dry_run=dry_run)
    except Exception as error:  # exit 2, never 1: 1 means "rejected" to CI
        _fail(f"retraining failed unexpectedly, the champion is unchanged: {error!r}")
    _report(decision)


@app.command("conventions")
def conventions_command(
    root: Annotated[Path, typer.Option(help="The project folder.")] = Path(),
) -> None:
    """Check the team's conventions; exit 1 with one sentence per failure."""
    from .conventions import check

    failures = check(root.resolve())
    for name, problems in failures.items():
        mark = "[green]ok[/green]" if not problems else "[red]FAIL[/red]"
        console.print(f"{mark} {name}")
        for problem in problems:
            console.print(f"    {problem}")
    raise typer.Exit(code=1 if any(failures.values()) else 0)


@app.command("models")
def models_command(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """List registered versions and the aliases that point at them."""
    from .train.tracking import tracking

    project = _open(config)
    name = project.config.tracking.registered_model
    with tracking(project) as client:
        versions = client.search_model_versions(f"name = '{name}'")
        aliases = client.get_registered_model(name).aliases if versions else {}
    table = Table(title=name)
    for column in ("version", "aliases", "family", "snapshot", "trained at"):
        table.add_column(column)
    for version in sorted(versions, key=lambda v: int(v.version)):
        names = ", ".join(sorted(a for a, v in aliases.items() if str(v) == str(version.version)))
        tags = version.tags
        table.add_row(
            str(version.version),
            names,
            tags.get("model_family", ""),
            tags.get("snapshot_id", ""),
            tags.get("trained_at", ""),
        )
    console.print(table)


@app.command("demo-data")
def demo_data_command(
    out: Annotated[Path, typer.Option(help="Where to write the rows (.csv or .parquet).")],
    schema_out: Annotated[Path | None, typer.Option(help="Also write the schema here.")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    rows: int = 20_000,
    seed: int = 7,
    start: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"])] = datetime(2025, 1, 1),
    days: int = 180,
    covariate_shift: float = 0.0,
    concept_shift: float = 0.0,
) -> None:
    """Write the demo data (for the project's task) to a file: to try the file source, or to
    give `monitor --source` a window that has drifted."""
    task = _open(config).config.train.task
    source = DemoSourceConfig(
        rows=rows,
        seed=seed,
        start=start.date(),
        days=days,
        covariate_shift=covariate_shift,
        concept_shift=concept_shift,
    )
    try:
        write_table(generate_demo(source, task), out)
    except DataError as error:
        _fail(str(error))
    console.print(f"wrote {rows} rows to {out}")
    if schema_out:
        demo_schema(task).to_yaml(schema_out)
        console.print(f"wrote the schema to {schema_out}")


@app.command("ui")
def ui_command(config: ConfigOption = DEFAULT_CONFIG, port: int = 5000) -> None:
    """Open the MLflow UI on the project's store (after fixing paths if the folder moved)."""
    from .train.tracking import relocate_store

    project = _open(config)
    relocate_store(project)
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        project.tracking_uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    raise typer.Exit(subprocess.call(command, cwd=project.root))  # noqa: S603
