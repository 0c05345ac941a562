"""The prediction log: every served prediction and every label that arrives later.

Serving writes to it (through `serve.batching.LogBuffer`); monitoring and the online A/B report
read it. It lives at a SQLAlchemy URL (`Project.prediction_log_url`): a SQLite file for one
machine, or PostgreSQL for service replicas that share one log.

The schema is versioned by a small table and an ordered list of steps, not by Alembic: two
tables need neither Alembic's revision graph nor its env.py and script folder (Alembic is here
only as MLflow's dependency), and an integer version makes "written by a newer release" a plain
comparison, with the lock around the steps chosen per dialect.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, Engine

from .errors import ProjectError

COLUMNS = [
    "prediction_id",
    "variant",
    "ts",
    "entity_id",
    "model_version",
    "served",
    "features",
    "prediction",
    "latency_ms",
    "probabilities",
    "label",
]
SUPPORTED = ("sqlite", "postgresql")
# Waits for another writer's lock before a write counts as failed (it is then retried).
SQLITE_BUSY_SECONDS = 10.0
SQLITE_JOURNAL = "TRUNCATE"  # a rollback journal: nothing mapped (see `_sqlite_connected`)
POSTGRES_CONNECT_SECONDS = 5
ROWS_PER_STATEMENT = 500  # 10 columns each: far below SQLite's and PostgreSQL's bound-value limits
# PostgreSQL: replicas starting together queue on this advisory lock around the schema steps.
SCHEMA_LOCK = 0x7072_6564_6C6F_6731  # "predlog1"
# SQLite: a connection with this execution option begins with BEGIN IMMEDIATE, taking the write
# lock up front, so two writers (or two replicas migrating) queue instead of failing midway.
IMMEDIATE = "prediction_log_immediate"


class PredictionLogError(ProjectError):
    """The log's database cannot be used by this release of the project."""


@dataclass(frozen=True)
class PredictionRecord:
    """One model's answer to one request; in shadow mode a request has two, one per variant."""

    prediction_id: str
    variant: str
    model_version: str
    served: bool
    features: dict[str, Any]
    prediction: float
    latency_ms: float
    entity_id: str | None = None
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Three or more classes: every class's probability (`prediction` is the class decided).
    probabilities: tuple[float, ...] | None = None


@dataclass(frozen=True)
class FeedbackRecord:
    """A prediction's true label. A later label for the same prediction (a relabel) wins, by
    `ts`, and every label stays in the `label_history` table with who gave it."""

    prediction_id: str
    label: float
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))
    labelled_by: str | None = None


LogRecord = PredictionRecord | FeedbackRecord


@dataclass(frozen=True)
class Written:
    """What one `PredictionLog.write` stored: rows, and how many labels replaced an earlier one
    (retried rows that were already stored count as neither)."""

    rows: int
    relabels: int = 0


class UtcTimestamp(sa.types.TypeDecorator[datetime]):
    """A point in time, stored in UTC. PostgreSQL keeps it as TIMESTAMPTZ and compares instants.
    SQLite has no time type: SQLAlchemy writes fixed-width `YYYY-MM-DD HH:MM:SS.ffffff` text,
    which sorts (and so compares, and indexes) in time order only because every value, bound
    parameters included, is converted to UTC first. ISO text with offsets would not: `+02:00`
    and `Z` times of the same instant compare unequal, and PostgreSQL would compare strings."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002 - SQLAlchemy's signature
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a naive datetime ({value}) has no instant: give its time zone")
        return value.astimezone(UTC)

    def process_result_value(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002 - SQLAlchemy's signature
    ) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@functools.cache
def upsert_sql(
    table: sa.Table,
    keys: tuple[str, ...],
    rows: int,
    placeholder: str,
    *,
    newer: str | None = None,
    replace: bool = True,
) -> str:
    """`rows` rows into `table`, a row whose `keys` exist replacing the old one (SQLite and
    PostgreSQL spell this alike). With `newer`, only if the new row's `newer` column is not
    older than the stored one's; with `replace=False` the stored row is kept."""
    names = [c.name for c in table.columns]
    row = f"({', '.join([placeholder] * len(names))})"
    updates = ", ".join(f"{name} = excluded.{name}" for name in names if name not in keys)
    action = f"DO UPDATE SET {updates}" if replace else "DO NOTHING"
    if replace and newer is not None:
        action += f" WHERE excluded.{newer} >= {table.name}.{newer}"
    return (  # names from the tables above; every value is a bound parameter
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES {', '.join([row] * rows)} "  # noqa: S608
        f"ON CONFLICT ({', '.join(keys)}) {action}"
    )


# The tables as queries see them now. Their history is in STEPS below, which never change.
METADATA = sa.MetaData()
PREDICTIONS = sa.Table(
    "predictions",
    METADATA,
    sa.Column("prediction_id", sa.Text, primary_key=True),
    sa.Column("variant", sa.Text, primary_key=True),
    sa.Column("ts", UtcTimestamp, nullable=False),
    sa.Column("entity_id", sa.Text),
    sa.Column("model_version", sa.Text, nullable=False),
    sa.Column("served", sa.Boolean, nullable=False),
    sa.Column("features", sa.Text, nullable=False),  # JSON
    sa.Column("prediction", sa.Double, nullable=False),
    sa.Column("latency_ms", sa.Double, nullable=False),
    sa.Column("probabilities", sa.Text),  # JSON list, in the schema's class order; else NULL
)
FEEDBACK = sa.Table(
    "feedback",
    METADATA,
    sa.Column("prediction_id", sa.Text, primary_key=True),
    sa.Column("ts", UtcTimestamp, nullable=False),
    sa.Column("label", sa.Double, nullable=False),
    sa.Column("labelled_by", sa.Text),
)
# Every label ever given, the replaced ones included: the audit trail of relabels.
LABEL_HISTORY = sa.Table(
    "label_history",
    METADATA,
    sa.Column("prediction_id", sa.Text, primary_key=True),
    sa.Column("ts", UtcTimestamp, primary_key=True),
    sa.Column("label", sa.Double, nullable=False),
    sa.Column("labelled_by", sa.Text),
)
# One row per schema step applied; its shape never changes, so any release can read it.
SCHEMA_VERSIONS = sa.Table(
    "prediction_log_schema",
    sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", UtcTimestamp, nullable=False),
)


def _create_tables(db: Connection) -> None:
    """Version 1: the two tables. Defined here, not from PREDICTIONS and FEEDBACK above, so a later
    change to those (which must come as a new step) cannot change what this step creates."""
    tables = sa.MetaData()
    sa.Table(
        "predictions",
        tables,
        sa.Column("prediction_id", sa.Text, primary_key=True),
        sa.Column("variant", sa.Text, primary_key=True),
        sa.Column("ts", UtcTimestamp, nullable=False),
        sa.Column("entity_id", sa.Text),
        sa.Column("model_version", sa.Text, nullable=False),
        sa.Column("served", sa.Boolean, nullable=False),
        sa.Column("features", sa.Text, nullable=False),
        sa.Column("prediction", sa.Double, nullable=False),
        sa.Column("latency_ms", sa.Double, nullable=False),
    )
    sa.Table(
        "feedback",
        tables,
        sa.Column("prediction_id", sa.Text, primary_key=True),
        sa.Column("ts", UtcTimestamp, nullable=False),
        sa.Column("label", sa.Double, nullable=False),
    )
    tables.create_all(db, checkfirst=False)


def _index_the_reads(db: Connection) -> None:
    """Version 2: indexes for the reads by time. One on (ts, served) serves `ab-report` (rows
    since a time: its ts prefix), `monitor` (served rows in a window: the ts range, served checked
    in the index) and `prune`; served second, so a lookup by id still uses the primary key, which
    leads with prediction_id (`has_prediction`). feedback's `ts` is for `prune`. A step of its
    own, so the upgrade path is exercised from the first release rather than on the first real
    change."""
    db.execute(sa.text("CREATE INDEX ix_predictions_ts_served ON predictions (ts, served)"))
    db.execute(sa.text("CREATE INDEX ix_feedback_ts ON feedback (ts)"))


def _keep_label_history(db: Connection) -> None:
    """Version 3: who gave each label, and every label a prediction was given (a relabel used to
    replace the earlier label without a trace). The labels already stored start the history."""
    db.execute(sa.text("ALTER TABLE feedback ADD COLUMN labelled_by TEXT"))
    history = sa.Table(
        "label_history",
        sa.MetaData(),
        sa.Column("prediction_id", sa.Text, primary_key=True),
        sa.Column("ts", UtcTimestamp, primary_key=True),
        sa.Column("label", sa.Double, nullable=False),
        sa.Column("labelled_by", sa.Text),
        sa.Index("ix_label_history_ts", "ts"),
    )
    history.create(db, checkfirst=False)
    db.execute(
        sa.text(
            "INSERT INTO label_history (prediction_id, ts, label, labelled_by) "
            "SELECT prediction_id, ts, label, NULL FROM feedback"
        )
    )


def _keep_class_probabilities(db: Connection) -> None:
    """Version 4: a multiclass prediction's every class probability, which log loss and the
    per-class checks read (`prediction` holds the class decided). NULL for other tasks and for
    the rows logged before."""
    db.execute(sa.text("ALTER TABLE predictions ADD COLUMN probabilities TEXT"))


# Append only: step i (from 1) brings a database from version i - 1 to version i.
STEPS: list[Callable[[Connection], None]] = [
    _create_tables,
    _index_the_reads,
    _keep_label_history,
    _keep_class_probabilities,
]
SCHEMA_VERSION = len(STEPS)


def _sqlite_connected(busy_seconds: float, dbapi_connection: Any, _record: Any) -> None:
    """No memory shared with the file system: a rollback journal, not WAL, and no memory map.

    WAL keeps its index in a `-shm` file mapped into every process that opens the database, and
    a write to a mapped page the kernel can no longer back (the file made immutable, or its file
    system turned read-only after a disk error) is a SIGBUS, not an error: the process dies
    mid-flush, with every buffered row. Without a mapping each fault is a failed system call,
    which SQLite reports as an error the log's buffer rides out. The journal is truncated, not
    deleted, after each commit: one file created once, not one per transaction.

    The price: a reader and the writer's commit exclude each other (a commit waits for reads in
    progress, within the busy timeout, then fails and its rows are retried at the next flush),
    and each commit syncs twice (journal, database) instead of once. The log commits once per
    `serve.flush_seconds` in pages of rows, so its capacity stays far above the service's.
    """
    # sqlite3 would BEGIN only before DML, so DDL would autocommit: `_begin` emits BEGIN instead.
    dbapi_connection.isolation_level = None
    dbapi_connection.execute("PRAGMA mmap_size=0")  # reads by read(2), whatever the build default
    # Leaving WAL (a file an earlier release wrote) needs the database to itself, and SQLite
    # answers "database is locked" at once (its busy timeout does not apply) while another
    # connection, a replica starting at the same moment, holds it: try again, for as long as
    # the connection's busy timeout (the URL's ?timeout= when it gives one).
    deadline = time.monotonic() + busy_seconds
    while True:
        try:
            dbapi_connection.execute(f"PRAGMA journal_mode={SQLITE_JOURNAL}")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _begin(db: Connection) -> None:
    immediate = db.get_execution_options().get(IMMEDIATE, False)
    db.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def open_engine(url: str) -> Engine:
    """An engine for the log at `url`, checked before each use from its pool (`pool_pre_ping`), so
    connections a database restart broke are replaced instead of failing the next write."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        raise PredictionLogError(
            f"the prediction log needs a sqlite:// or postgresql:// URL, not {backend}://"
        )
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        busy_seconds = float(str(parsed.query.get("timeout", SQLITE_BUSY_SECONDS)))
        connect_args["timeout"] = busy_seconds  # a URL's ?timeout= wins
    elif "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = POSTGRES_CONNECT_SECONDS
    # hide_parameters: errors are logged, and the rows' features must not be in the logs.
    engine = sa.create_engine(
        parsed, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args
    )
    if backend == "sqlite":
        sa.event.listen(engine, "connect", functools.partial(_sqlite_connected, busy_seconds))
        sa.event.listen(engine, "begin", _begin)
    return engine


def refused_rows(error: BaseException) -> bool:
    """Whether the rows themselves failed (a constraint, a value the database cannot store or
    that cannot be converted): retrying them would fail forever, unlike an outage, which a later
    retry outlives."""
    if isinstance(error, sa.exc.IntegrityError | sa.exc.DataError | TypeError | ValueError):
        return True
    return isinstance(error, sa.exc.StatementError) and not isinstance(error, sa.exc.DBAPIError)


def short_reason(error: BaseException) -> str:
    """An error in one line, without SQL or parameters: fit for a log line."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"


class PredictionLog:
    """The log at one SQLAlchemy URL, with its own engine; the tables are created, or brought up
    to date, on first use. Thread-safe: the service writes and looks up from worker threads."""

    def __init__(self, url: str) -> None:
        self.engine = open_engine(url)
        self.shown_url = self.engine.url.render_as_string(hide_password=True)
        self._schema_lock = threading.Lock()
        self._schema_ready = False

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections (the log stays usable: it opens new ones)."""
        self.engine.dispose()

    # --- schema --------------------------------------------------------------------------------

    def ensure_schema(self) -> int:
        """Create the tables, or apply the steps an older database lacks, each exactly once;
        returns the version. Refuses a database written by a newer release."""
        with self._schema_lock:
            if not self._schema_ready:
                self._migrate()
                self._schema_ready = True
        return SCHEMA_VERSION

    def _migrate(self) -> None:
        with self.engine.connect() as db:
            db.execution_options(**{IMMEDIATE: True})
            with db.begin():
                if db.dialect.name == "postgresql":
                    db.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
                SCHEMA_VERSIONS.create(db, checkfirst=True)
                found = db.scalar(sa.select(sa.func.max(SCHEMA_VERSIONS.c.version))) or 0
                if found > SCHEMA_VERSION:
                    raise PredictionLogError(
                        f"the prediction log at {self.shown_url} has schema version {found}, "
                        f"newer than version {SCHEMA_VERSION}, the newest this release knows: a "
                        "newer release wrote it. Run that release, or point PREDICTION_LOG_URL "
                        "at another database."
                    )
                for version in range(found + 1, SCHEMA_VERSION + 1):
                    STEPS[version - 1](db)
                    stamp = {"version": version, "applied_at": datetime.now(UTC)}
                    db.execute(SCHEMA_VERSIONS.insert().values(**stamp))

    @contextmanager
    def _transaction(self, *, writes: bool) -> Iterator[Connection]:
        self.ensure_schema()
        try:
            with self.engine.connect() as db:
                if writes:
                    db.execution_options(**{IMMEDIATE: True})
                with db.begin():
                    yield db
        except sa.exc.SQLAlchemyError:
            # Once it answers again it may be a new, empty database: check the schema again.
            self._schema_ready = False
            raise

    # --- writing -------------------------------------------------------------------------------

    def _upsert(
        self,
        db: Connection,
        table: sa.Table,
        keys: tuple[str, ...],
        rows: list[dict[str, Any]],
        *,
        newer: str | None = None,
        replace: bool = True,
    ) -> int:
        """INSERT ... ON CONFLICT DO UPDATE (or DO NOTHING): a row written twice (a retried
        batch) is kept once. Returns the rows the database inserted or changed.

        Pages of rows per statement, not one statement per row, with the statement text built
        once per page size: the driver releases the GIL for each statement, and under load a
        thread that keeps giving it up waits for it each time (a write of thousands of rows
        took seconds while the service was busy)."""
        dialect = self.engine.dialect
        convert = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in table.columns]
        names = [c.name for c in table.columns]
        placeholder = "?" if dialect.paramstyle == "qmark" else "%s"
        changed = 0
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            page = rows[start : start + ROWS_PER_STATEMENT]
            values = tuple(
                row[name] if process is None else process(row[name])
                for row in page
                for name, process in zip(names, convert, strict=True)
            )
            sql = upsert_sql(table, keys, len(page), placeholder, newer=newer, replace=replace)
            changed += db.exec_driver_sql(sql, values).rowcount
        return changed

    def _store_labels(self, db: Connection, labels: list[dict[str, Any]]) -> int:
        """Every label into the history; each prediction's latest (by `ts`) into `feedback`, which
        the reads join. Returns the relabels: labels new to the history for predictions that
        already had one, so a retried batch counts nothing twice."""
        ids = sorted({row["prediction_id"] for row in labels})
        labelled: set[str] = set()
        for start in range(0, len(ids), ROWS_PER_STATEMENT):
            page = ids[start : start + ROWS_PER_STATEMENT]
            found = sa.select(FEEDBACK.c.prediction_id).where(FEEDBACK.c.prediction_id.in_(page))
            labelled.update(db.scalars(found))
        added = self._upsert(db, LABEL_HISTORY, ("prediction_id", "ts"), labels, replace=False)
        latest: dict[str, dict[str, Any]] = {}
        for row in labels:
            kept = latest.get(row["prediction_id"])
            if kept is None or row["ts"] >= kept["ts"]:
                latest[row["prediction_id"]] = row
        self._upsert(db, FEEDBACK, ("prediction_id",), [*latest.values()], newer="ts")
        return max(0, added - (len(ids) - len(labelled)))

    def write(self, records: Iterable[LogRecord]) -> Written:
        """Predictions and labels in one transaction. A prediction given twice keeps its last row
        (one statement may not update a row twice on PostgreSQL); a prediction's labels are all
        kept in the history, and the latest by time is the label reads join."""
        predictions: dict[tuple[str, str], dict[str, Any]] = {}
        labels: dict[tuple[str, datetime], dict[str, Any]] = {}
        for r in records:
            if isinstance(r, PredictionRecord):
                predictions[(r.prediction_id, r.variant)] = {
                    "prediction_id": r.prediction_id,
                    "variant": r.variant,
                    "ts": r.ts,
                    "entity_id": r.entity_id,
                    "model_version": r.model_version,
                    "served": r.served,
                    "features": json.dumps(r.features, default=str),
                    "prediction": float(r.prediction),
                    "latency_ms": float(r.latency_ms),
                    "probabilities": None
                    if r.probabilities is None
                    else json.dumps([float(p) for p in r.probabilities]),
                }
            else:
                labels[(r.prediction_id, r.ts)] = {
                    "prediction_id": r.prediction_id,
                    "ts": r.ts,
                    "label": float(r.label),
                    "labelled_by": r.labelled_by,
                }
        if not predictions and not labels:
            return Written(rows=0)
        relabels = 0
        with self._transaction(writes=True) as db:
            if predictions:
                self._upsert(db, PREDICTIONS, ("prediction_id", "variant"), [*predictions.values()])
            if labels:
                relabels = self._store_labels(db, [*labels.values()])
        return Written(rows=len(predictions) + len(labels), relabels=relabels)

    def append(self, records: Iterable[PredictionRecord]) -> Written:
        return self.write(records)

    def append_feedback(self, records: Iterable[FeedbackRecord]) -> Written:
        return self.write(records)

    def prune(self, before: datetime) -> int:
        """Retention: delete predictions, and labels (their history too), from before `before`;
        returns how many predictions went. The deletes use the `ts` indexes."""
        with self._transaction(writes=True) as db:
            deleted = db.execute(sa.delete(PREDICTIONS).where(PREDICTIONS.c.ts < before)).rowcount
            db.execute(sa.delete(FEEDBACK).where(FEEDBACK.c.ts < before))
            db.execute(sa.delete(LABEL_HISTORY).where(LABEL_HISTORY.c.ts < before))
        return int(deleted)

    # --- reading -------------------------------------------------------------------------------

    def has_prediction(self, prediction_id: str) -> bool:
        """Whether a served prediction with this id is in the log (by any replica)."""
        query = (
            sa.select(sa.literal(1))
            .where(PREDICTIONS.c.prediction_id == prediction_id, PREDICTIONS.c.served == sa.true())
            .limit(1)
        )
        with self._transaction(writes=False) as db:
            return db.scalar(query) is not None

    def label_history(self, prediction_id: str) -> pd.DataFrame:
        """Every label the prediction was given, oldest first, with who gave it; the last row
        is the label `read` joins."""
        h = LABEL_HISTORY
        query = (
            sa.select(h.c.ts, h.c.label, h.c.labelled_by)
            .where(h.c.prediction_id == prediction_id)
            .order_by(h.c.ts)
        )
        with self._transaction(writes=False) as db:
            result = db.execute(query)
            return pd.DataFrame(result.all(), columns=list(result.keys()))

    @staticmethod
    def query(
        since: datetime | None = None, until: datetime | None = None, served: bool | None = None
    ) -> sa.Select[Any]:
        """Predictions in [since, until), optionally only served ones or only shadow ones, each
        with its label where one has arrived, oldest first."""
        p, f = PREDICTIONS, FEEDBACK
        query = sa.select(*p.columns, f.c.label).select_from(
            p.outerjoin(f, f.c.prediction_id == p.c.prediction_id)
        )
        if since is not None:
            query = query.where(p.c.ts >= since)
        if until is not None:
            query = query.where(p.c.ts < until)
        if served is not None:
            query = query.where(p.c.served == (sa.true() if served else sa.false()))
        return query.order_by(p.c.ts, p.c.prediction_id, p.c.variant)

    def read(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        served: bool | None = None,
    ) -> pd.DataFrame:
        """`query`'s rows as a frame: `ts` in UTC, `label` NaN where none has arrived."""
        for bound in (since, until):
            if bound is not None and bound.tzinfo is None:
                raise ValueError(f"{bound} has no time zone: the log compares instants")
        with self._transaction(writes=False) as db:
            result = db.execute(self.query(since, until, served))
            frame = pd.DataFrame(result.all(), columns=list(result.keys()))
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        frame["served"] = frame["served"].astype(bool)
        for column in ("prediction", "latency_ms", "label"):
            frame[column] = frame[column].astype(float)
        return frame[COLUMNS]

    def shadow_pairs(self, champion: str, challenger: str) -> pd.DataFrame:
        """Labelled shadow pairs of exactly these two versions, oldest first: requests the
        champion answered (`served`) and the challenger scored unseen under the same
        `prediction_id`, whose label has arrived (a /feedback label names the served prediction,
        and the log joins it to both rows). Columns: prediction_id, ts, features (JSON), label,
        champion and challenger (each version's logged prediction), and for three or more
        classes champion_probabilities and challenger_probabilities (JSON)."""
        served, shadow, f = PREDICTIONS.alias("served"), PREDICTIONS.alias("shadow"), FEEDBACK
        query = (
            sa.select(
                served.c.prediction_id,
                served.c.ts,
                served.c.features,
                f.c.label,
                served.c.prediction.label("champion"),
                shadow.c.prediction.label("challenger"),
                served.c.probabilities.label("champion_probabilities"),
                shadow.c.probabilities.label("challenger_probabilities"),
            )
            .select_from(
                served.join(shadow, shadow.c.prediction_id == served.c.prediction_id).join(
                    f, f.c.prediction_id == served.c.prediction_id
                )
            )
            .where(
                served.c.variant == "champion",
                served.c.served == sa.true(),
                served.c.model_version == champion,
                shadow.c.variant == "challenger",
                shadow.c.served == sa.false(),
                shadow.c.model_version == challenger,
            )
            .order_by(served.c.ts, served.c.prediction_id)
        )
        with self._transaction(writes=False) as db:
            result = db.execute(query)
            frame = pd.DataFrame(result.all(), columns=list(result.keys()))
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        for column in ("label", "champion", "challenger"):
            frame[column] = frame[column].astype(float)
        return frame

    @staticmethod
    def scores(predictions: pd.Series, probabilities: pd.Series) -> np.ndarray:
        """What the metrics read from logged rows (`metrics.py`): the logged predictions, or
        where the rows carry every class's probability, the probability matrix."""
        if len(probabilities) and probabilities.notna().all():
            return np.array([json.loads(row) for row in probabilities], dtype=float)
        return predictions.to_numpy(dtype=float)

    @staticmethod
    def features_frame(log: pd.DataFrame) -> pd.DataFrame:
        """The logged request features as columns, for drift checks against training data."""
        return pd.DataFrame([json.loads(row) for row in log["features"]], index=log.index)
