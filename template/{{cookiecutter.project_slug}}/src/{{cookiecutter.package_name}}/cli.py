"""Command line over the stages: ingest, train, promote, serve, monitor, retrain, and helpers.

Heavy libraries (MLflow, scikit-learn, pandas, Evidently, FastAPI) are imported inside the
commands that use them, so `--help` and every command start fast. Every command exits with a
code from `exit_codes.ExitCode`; any failure without a decision of its own exits 2. Results go to
stdout and diagnostics (progress, warnings, errors) to stderr, so a pipe or a script reads the
results alone; `--json` makes the results one JSON document.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import typer
from typer.core import TyperGroup

from .errors import ProjectError
from .exit_codes import ExitCode
from .families import KINDS

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from .config import Project
    from .promote import Decision

    FamilyKind = str
else:
    # The registered families, as typer offers and checks them (a Literal mypy cannot build).
    FamilyKind = Literal[KINDS]

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="Project configuration file.", show_default=True)
]
DEFAULT_CONFIG = Path("configs/project.yaml")
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Decide and record, but move no alias.")
]
UNLIMITED = 1 << 20  # columns: a table in a pipe is as wide as its widest row needs
JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print one JSON document on stdout instead of the table; the exit code is the same.",
    ),
]


def console() -> Console:
    """Diagnostics (progress, warnings, errors) go to stderr, so stdout holds only results."""
    from rich.console import Console

    return Console(stderr=True)


def results(width: int | None = None) -> Console:
    """Results go to stdout, where a pipe reads them (`models | grep champion`); a line is never
    wrapped there, so a script reads a long path whole."""
    from rich.console import Console

    return Console(soft_wrap=True, width=width)


def print_json(document: Any) -> None:
    """One JSON document on stdout and nothing else: masked like every text that leaves the
    process; a non-finite number written as null (strict parsers such as jq refuse NaN), and a
    path or a time as text, as the files the document was written to have them."""
    from pydantic_core import to_json

    from .redaction import redact_all

    text = to_json(redact_all(document), indent=2, inf_nan_mode="null", fallback=str)
    typer.echo(text.decode())


class GuardedGroup(TyperGroup):
    """The one catch-all: a failure inside any command exits 2 with a one-line message (and the
    traceback with --verbose), never typer's default 1, which CI reads as a negative outcome."""

    def invoke(self, ctx: Any) -> Any:  # typer.Context; its base is typer-private
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # typer's own exits and usage errors keep their codes
        except ProjectError as error:
            fail(str(error))
        except Exception as error:
            if ctx.params.get("verbose"):
                console().print_exception()
            fail(
                f"unexpected {type(error).__name__}: {error}".splitlines()[0]
                + " (run with --verbose for the traceback)"
            )


app = typer.Typer(
    name="{{ cookiecutter.package_name }}",
    help=__doc__.split("\n\n")[0] if __doc__ else None,
    cls=GuardedGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def options(
    verbose: Annotated[  # noqa: ARG001 - read by GuardedGroup from the context
        bool, typer.Option("--verbose", help="Print the traceback of an unexpected failure.")
    ] = False,
) -> None:
    """Train, gate, serve and monitor the project's models."""
    from .redaction import redact_logs

    redact_logs()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow writes "View run ... at <url>" to stdout after each run on a tracking server: stdout
    # holds a command's results only (one JSON document with --json).
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # MLflow's INFO lines ("Creating initial MLflow database tables...") are its own housekeeping,
    # not the command's diagnostics; MLFLOW_LOGGING_LEVEL=INFO brings them back.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def fail(message: str) -> NoReturn:
    """The message in one line, its secrets masked and its square brackets shown as written
    (console markup would swallow `[spark]` in `pip install -e '.[spark]'`)."""
    from rich.markup import escape

    from .redaction import redact

    console().print(f"[red]error:[/red] {escape(redact(message))}", highlight=False)
    raise typer.Exit(code=ExitCode.ERROR)


def finish(code: int) -> NoReturn:
    raise typer.Exit(code=int(code))


@contextmanager
def step(description: str) -> Iterator[None]:
    """A spinner with elapsed time for a step that takes a while."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    out = console()
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=out
    ) as progress:
        progress.add_task(description, total=None)
        yield
    out.print(f"[green]done[/green] {description}")


def open_project(config: Path) -> Project:
    from .config import load_project

    return load_project(config)


def report(decision: Decision, *, as_json: bool = False) -> NoReturn:
    """Print the one-sentence reason and exit with the outcome's code. With `as_json`, stdout
    gets the decision record as written (and where), and the sentence goes to stderr for the log.
    """
    colour = {"promoted": "green", "rolled_back": "green", "keep_collecting": "yellow"}.get(
        decision.outcome.value, "red"
    )
    if as_json:
        print_json({**decision.record, "record_path": decision.record_path})
    out = console() if as_json else results()
    out.print(f"[{colour}]{decision.outcome.value}[/{colour}]: {decision.reason}")
    out.print(f"decision record: {decision.record_path}")
    finish(decision.outcome.exit_code)


def table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A command's result as a table, on stdout."""
    from rich.table import Table

    shown = Table(title=title)
    for i, column in enumerate(columns):
        shown.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        shown.add_row(*row)
    print_table(shown)


def print_table(shown: Table) -> None:
    """On stdout: fitted to a terminal; whole in a pipe or a file, where a cell cut short to 80
    columns (`20261207T0328…`) would lose the very value a script or `grep` looks for."""
    out = results()
    if not out.is_terminal:
        out = results(width=results(width=UNLIMITED).measure(shown).maximum)
    out.print(shown)


@app.command("ingest")
def ingest_command(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Read the source, quarantine invalid rows, split them (data.split), write a snapshot."""
    from .data import ingest

    project = open_project(config)
    with step("ingesting"):
        result = ingest(project)
    parts = result.snapshot.manifest["parts"]
    table(
        f"snapshot {result.snapshot.snapshot_id}",
        ["read", "valid", "quarantined", "train", "validation", "holdout"],
        [
            [
                str(result.rows_read),
                str(result.rows_valid),
                str(result.rows_quarantined),
                *(str(parts[name]["rows"]) for name in ("train", "validation", "holdout")),
            ]
        ],
    )
    results().print(f"the holdout: {result.snapshot.split['holdout']}", markup=False)
    out = console()
    if result.quarantine_file:
        out.print(
            f"[yellow]{result.rows_quarantined} rows quarantined[/yellow] with reasons in "
            f"{project.shown(result.quarantine_file)}"
        )
    if result.ignored_columns:
        out.print(
            f"[yellow]ignored[/yellow] columns the schema does not list: "
            f"{', '.join(result.ignored_columns)}"
        )
    for warning in result.warnings:
        out.print(f"[yellow]warning:[/yellow] {warning}")


@app.command("train")
def train_command(
    config: ConfigOption = DEFAULT_CONFIG,
    family: Annotated[
        FamilyKind | None, typer.Option(help="Train this family instead of the configured one.")
    ] = None,
    snapshot: Annotated[
        str | None, typer.Option(help="Snapshot id; the latest by default.")
    ] = None,
) -> None:
    """Train the baseline and the model on a snapshot, log to MLflow, register the challenger.

    When there is no champion yet, the promotion gate then makes the new version the first one.
    """
    from .promote import promote
    from .store import CHAMPION, Store
    from .train import train

    project = open_project(config)
    with step("training"):
        result = train(project, family=family, snapshot_id=snapshot)
    table(
        f"{result.model_name} version {result.version} ({result.family})",
        ["holdout metric", "model", "baseline"],
        [
            [name, f"{value:.4f}", f"{result.baseline_metrics[name]:.4f}"]
            for name, value in result.metrics.items()
        ],
    )
    out = results()
    out.print(
        f"registered [bold]{result.model_name}[/bold] v{result.version} as challenger, "
        f"{result.scoring}"
    )
    if Store.open(project).alias_version(CHAMPION) is None:
        decision = promote(project)
        out.print(f"{decision.outcome.value}: {decision.reason}")
        finish(decision.outcome.exit_code)


@app.command("promote")
def promote_command(
    config: ConfigOption = DEFAULT_CONFIG,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Run the A/B gate: exit 0 promoted, 1 rejected, 3 keep collecting (too few rows of
    evidence: labelled shadow traffic makes up the rest), 2 error. Writes a decision record."""
    from .promote import promote

    project = open_project(config)
    with step("comparing challenger and champion on the holdout and labelled shadow rows"):
        decision = promote(project, dry_run=dry_run)
    report(decision, as_json=as_json)


@app.command("rollback")
def rollback_command(config: ConfigOption = DEFAULT_CONFIG, as_json: JsonOption = False) -> None:
    """Point `champion` back at `previous-champion`: exit 0 rolled back, 2 error."""
    from .promote import rollback

    report(rollback(open_project(config)), as_json=as_json)


@app.command("ab-report")
def ab_report_command(
    config: ConfigOption = DEFAULT_CONFIG,
    since: Annotated[
        datetime | None, typer.Option(help="Only predictions from this instant (UTC) on.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Analyse the online experiment: exit 0 promote, 1 roll back, 3 keep collecting, 2 error."""
    from .promote import ab_report

    project = open_project(config)
    decision = ab_report(project, since=since.replace(tzinfo=UTC) if since else None)
    report(decision, as_json=as_json)


@app.command("serve")
def serve_command(
    config: ConfigOption = DEFAULT_CONFIG,
    host: Annotated[str | None, typer.Option(help="Overrides serve.host.")] = None,
    port: Annotated[int | None, typer.Option(help="Overrides serve.port.")] = None,
) -> None:
    """Serve the champion over HTTP (FastAPI on uvicorn)."""
    from .serve import run_server

    run_server(open_project(config), host=host, port=port)


class Engine(StrEnum):
    """Where `batch-predict` runs."""

    PANDAS = "pandas"
    SPARK = "spark"


@app.command("batch-predict")
def batch_predict_command(
    source: Annotated[
        Path, typer.Argument(help="CSV or Parquet file (a folder of them with --engine spark).")
    ],
    output: Annotated[
        Path, typer.Argument(help="Parquet file to write (a folder with --engine spark).")
    ],
    config: ConfigOption = DEFAULT_CONFIG,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows held in memory at once.")] = 50_000,
    engine: Annotated[
        Engine,
        typer.Option(
            help="pandas: this machine, chunk by chunk. spark: Apache Spark (the spark extra)."
        ),
    ] = Engine.PANDAS,
    master: Annotated[
        str | None,
        typer.Option(help="With --engine spark: the cluster's master URL; default local[*]."),
    ] = None,
) -> None:
    """Score a file of any size with the champion; invalid rows are quarantined."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from .serve import batch_predict

    project = open_project(config)
    out = console()
    if engine == Engine.SPARK:
        from .serve.spark import spark_batch_predict

        with step(f"scoring {source} on Spark"):
            result = spark_batch_predict(project, source, output, master)
    else:
        if master is not None:
            fail("--master is for --engine spark")
        with Progress(
            SpinnerColumn(),
            TextColumn("scoring {task.completed:,} rows"),
            TimeElapsedColumn(),
            console=out,
            transient=True,
        ) as progress:
            task = progress.add_task("scoring", total=None)
            result = batch_predict(
                project,
                source,
                output,
                chunk_rows,
                on_chunk=lambda rows: progress.advance(task, rows),
            )
    results().print(
        f"scored {result.rows_scored:,} of {result.rows_read:,} rows with "
        f"v{result.model_version} ({result.scoring} scoring) into {result.output}"
    )
    if result.quarantine_file:
        out.print(
            f"[yellow]{result.rows_quarantined:,} rows quarantined[/yellow] in "
            f"{result.quarantine_file}"
        )


@app.command("replay")
def replay_command(
    source: Annotated[Path, typer.Argument(help="CSV or Parquet rows, with their labels.")],
    url: Annotated[str, typer.Option(help="The running service.")] = "http://127.0.0.1:8000",
    rows: Annotated[int | None, typer.Option(help="Only the newest ROWS valid rows.")] = None,
    labels: Annotated[bool, typer.Option(help="Send each answered row's label after.")] = True,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Send a file's rows to a running service over HTTP, then their labels as feedback."""
    from .serve import replay

    result = replay(open_project(config), source, url, rows=rows, labels=labels)
    results().print(f"{url}: {result.summary()}")  # one line, for scripts
    if result.failed:
        finish(ExitCode.ERROR)


@app.command("monitor")
def monitor_command(
    config: ConfigOption = DEFAULT_CONFIG,
    source: Annotated[
        Path | None, typer.Option(help="A CSV/Parquet file instead of the prediction log.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check drift and performance: exit 0 ok, 1 drift, 3 performance drop, 2 error."""
    from .monitor import monitor

    project = open_project(config)
    with step("comparing the current window with the champion's reference data"):
        result = monitor(project, source=source)
    if as_json:
        print_json(result.summary)  # the summary as written beside the drift report
        out = console()
        out.print(f"monitor: {result.status}", *(f"- {r}" for r in result.reasons), sep="\n")
        finish(result.exit_code)
    drift = result.summary.get("drift", {})
    rows = [
        ["rows in window", str(result.summary["current"]["rows"])],
        ["drifted feature share", f"{drift.get('drifted_share', float('nan')):.2f}"],
    ]
    performance = result.summary.get("performance", {})
    if "current" in performance:
        now = performance["current"]
        # NaN is never equal to itself: a metric the window's labels leave undefined.
        shown = f"{now:.4f}" if now == now else "undefined on these labels (one value only)"
        rows.append(
            [
                f"{performance['metric']} now / at training",
                f"{shown} / {performance['training_holdout'] or 0:.4f}",
            ]
        )
        reference = performance.get("class_recall_reference", {})

        def recall(value: float | None) -> str:
            return "no rows" if value is None else f"{value:.3f}"  # None: none of the class

        for name, now in performance.get("class_recall", {}).items():
            before = recall(reference.get(name))
            rows.append([f"recall of {name} now / reference", f"{recall(now)} / {before}"])
    elif "labelled_rows" in performance:
        least = project.config.monitor.min_window_rows
        labelled = performance["labelled_rows"]
        rows.append(["labelled rows", f"{labelled}, too few to judge (< {least})"])
    rows.append(["retrain", "yes" if result.retrain else "no"])
    table(f"monitor: {result.status}", ["check", "value"], rows)
    out = results()
    for reason in result.reasons:
        out.print(f"- {reason}")
    if result.report:
        out.print(f"report: {result.report}")
    finish(result.exit_code)


@app.command("retrain")
def retrain_command(
    config: ConfigOption = DEFAULT_CONFIG,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Ingest, train a challenger, run the gate: exit 0 promoted, 1 rejected, 3 keep
    collecting, 2 error."""
    from .loop import retrain

    project = open_project(config)
    with step("retraining: ingest, train, gate"):
        decision = retrain(project, dry_run=dry_run)
    report(decision, as_json=as_json)


@app.command("report")
def report_command(
    config: ConfigOption = DEFAULT_CONFIG,
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write the page; default: loop.html in the reports folder."),
    ] = None,
) -> None:
    """Write one HTML page of the loop: versions, metric over time, drift, the gate's evidence."""
    from .report import write_report

    project = open_project(config)
    page = write_report(project, out)
    results().print(
        f"wrote {project.shown(page.path)}: {page.headline}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@app.command("conventions")
def conventions_command(
    root: Annotated[Path, typer.Option(help="The project folder.")] = Path(),
) -> None:
    """Check the team's conventions: exit 0 all pass, 1 with one sentence per failure."""
    from .conventions import check

    failures = check(root.resolve())
    out = results()
    for name, problems in failures.items():
        mark = "[green]ok[/green]" if not problems else "[red]FAIL[/red]"
        out.print(f"{mark} {name}")
        for problem in problems:
            out.print(f"    {problem}")
    finish(ExitCode.NEGATIVE if any(failures.values()) else ExitCode.OK)


@app.command("models")
def models_command(config: ConfigOption = DEFAULT_CONFIG, as_json: JsonOption = False) -> None:
    """List registered versions and the aliases that point at them."""
    from dataclasses import asdict

    from .store import read_versions

    project = open_project(config)
    model = project.config.tracking.registered_model
    versions = read_versions(project)
    if as_json:
        aliases = {alias: row.version for row in versions for alias in row.aliases}
        print_json(
            {"model": model, "aliases": aliases, "versions": [asdict(row) for row in versions]}
        )
        return
    rows = [
        [
            row.version,
            ", ".join(row.aliases),
            row.family or "",
            row.snapshot_id or "",
            row.trained_at or "",
        ]
        for row in versions
    ]
    table(model, ["version", "aliases", "family", "snapshot", "trained at"], rows)


@app.command("backends")
def backends_command(
    config: ConfigOption = DEFAULT_CONFIG,
    require: Annotated[
        list[str] | None,
        typer.Option(help="tracking, log or data (repeat or comma-separate): fail unless set."),
    ] = None,
) -> None:
    """Say where runs, models, the prediction log and the training data live."""
    from .backends import parse_roles, require_shared

    found = require_shared(open_project(config), parse_roles(require or []))
    shown = [[b.role, b.what, b.kind, b.location] for b in found]
    table("backends", ["role", "what", "kind", "where"], shown)


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
    from .config import DemoSourceConfig
    from .data import demo_schema, generate_demo, write_table

    task = open_project(config).config.train.task
    source = DemoSourceConfig(
        rows=rows,
        seed=seed,
        start=start.date(),
        days=days,
        covariate_shift=covariate_shift,
        concept_shift=concept_shift,
    )
    write_table(generate_demo(source, task), out)
    results().print(f"wrote {rows} rows to {out}")
    if schema_out:
        demo_schema(task).to_yaml(schema_out)
        results().print(f"wrote the schema to {schema_out}")


schema_app = typer.Typer(
    name="schema",
    help="The data contract: infer a schema file from a data file.",
    no_args_is_help=True,
)
app.add_typer(schema_app)


@schema_app.command("infer")
def schema_infer_command(
    data: Annotated[
        str,
        typer.Argument(
            help="CSV or Parquet file to infer the schema from: a path, or an fsspec URL "
            "(s3://bucket/events.csv)."
        ),
    ],
    target: Annotated[str, typer.Option(help="The column the model predicts.")],
    timestamp: Annotated[str, typer.Option(help="The column that orders rows in time.")],
    id_column: Annotated[
        str | None, typer.Option("--id", help="The entity id column, if the data has one.")
    ] = None,
    positive: Annotated[
        str | None,
        typer.Option(help="Binary target: the class scored as 1 (default: the second, sorted)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where to write; default data.source.schema_path, else configs/schema.yaml."
        ),
    ] = None,
    delimiter: Annotated[
        str | None, typer.Option(help="A CSV file's one-character separator; detected by default.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Infer a data file's schema: print what each column became and why, write commented YAML.

    The task (binary or multiclass classification, or regression) is the project's; review the
    file before use.
    """
    from rich.table import Table
    from rich.text import Text

    from .config import DemoSourceConfig, FileSourceConfig
    from .data import inference, slice_column_problem, split_column_problem
    from .data.sources import Location, csv_delimiter, is_url, shown_location, source_location

    project = open_project(config)
    source = project.config.data.source
    file_source = source if isinstance(source, FileSourceConfig) else None
    # A file or sql source names its schema file; the demo's schema is built in.
    schema_path = (
        Path("configs") / "schema.yaml"
        if isinstance(source, DemoSourceConfig)
        else source.schema_path
    )
    destination = out if out is not None else project.path(schema_path)
    if destination.exists() and not force:
        fail(f"{destination} exists: pass --force to overwrite it")
    if delimiter is not None and len(delimiter) != 1:
        fail(f"--delimiter takes one character, got {delimiter!r}")
    location: Location = data if is_url(data) else Path(data).resolve()
    shown_data = project.shown(location) if isinstance(location, Path) else shown_location(data)
    ingested = source_location(project, file_source) if file_source else None
    if isinstance(ingested, Path):
        ingested = ingested.resolve()
    is_source = ingested == location
    if is_source and delimiter is None and file_source is not None:
        delimiter = file_source.delimiter  # the file ingest reads: read it the same way
    inferred = inference.infer_file(
        location,
        project.config.train.task,
        target=target,
        timestamp=timestamp,
        id_column=id_column,
        positive=positive,
        delimiter=delimiter,
        split=project.config.data.split,
    )
    shown = Table(title=f"schema of {shown_location(data)} ({inferred.rows} rows)")
    for heading in ("column", "role", "declared", "why"):
        shown.add_column(heading, overflow="fold")
    for decision in inferred.decisions:
        role = Text(decision.role) if decision.role else Text("left out", style="yellow")
        shown.add_row(Text(decision.name), role, Text(decision.declared), Text(decision.reason))
    print_table(shown)
    out_console = results()
    for note in inferred.notes:
        console().print(Text.assemble(("note: ", "yellow"), note))
    inference.write_schema(inferred, destination, shown_data)
    left_out = f"; left out: {', '.join(inferred.left_out)}" if inferred.left_out else ""
    count = len(inferred.schema.columns)
    written = project.shown(destination.resolve())
    out_console.print(Text(f"wrote {written} ({count} columns{left_out})"))
    if not is_source:
        keys = [
            "kind: file",
            f"path: {shown_data}",
            f"schema_path: {written}",
        ]
        is_csv = Path(data).suffix.lower() == ".csv"
        if is_csv and (used := csv_delimiter(location, delimiter)) != ",":
            keys.append(f"delimiter: {used!r}")
        out_console.print(Text(f"to ingest it, set data.source to: {', '.join(keys)}"))
    if (problem := slice_column_problem(project, inferred.schema, written)) is not None:
        out_console.print(Text(f"and {problem}"))
    if (problem := split_column_problem(project, inferred.schema, written)) is not None:
        out_console.print(Text(f"and {problem}"))
    if inferred.one_sided_by_time and project.config.data.split.strategy == "time":
        task = project.config.train.task
        classifier = task != "regression"
        drawn = "rows drawn at random" + (", stratified by class" if classifier else "")
        held = {
            "binary_classification": "hold one class",
            "multiclass_classification": "lack classes",
        }.get(task, "hold one value")
        out_console.print(
            Text(
                f"and set data.split.strategy: random ({drawn}) or group (whole entities, "
                f"data.split.group_column) in {project.config_name}: cut by time, the "
                f"{', '.join(inferred.one_sided_by_time)} split(s) would {held} of the target "
                "(the table looks sorted by its label), and ingest would refuse them"
            )
        )


@app.command("ui")
def ui_command(config: ConfigOption = DEFAULT_CONFIG, port: int = 5000) -> None:
    """Open the MLflow UI on the project's store (after re-pointing it if the folder moved)."""
    from .store import Store

    project = Store.open(open_project(config)).project
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
    finish(subprocess.call(command, cwd=project.root))  # noqa: S603
