"""The prediction log on a real SQLite file: schema versions, upserts, reads filtered in SQL,
replicas sharing one file, and the service's buffer riding out a database it cannot write."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from {{ cookiecutter.package_name }}.predictions import (
    FEEDBACK,
    PREDICTIONS,
    SCHEMA_VERSION,
    SCHEMA_VERSIONS,
    FeedbackRecord,
    PredictionLog,
    PredictionLogError,
    PredictionRecord,
)
from {{ cookiecutter.package_name }}.serve.batching import LogBuffer

START = datetime(2026, 3, 1, tzinfo=UTC)
INDEXES = {"ix_predictions_ts_served", "ix_feedback_ts"}


def _url(path: Path, **query: str) -> str:
    extra = "&".join(f"{key}={value}" for key, value in query.items())
    return f"sqlite:///{path}" + (f"?{extra}" if extra else "")


def _prediction(i: int, ts: datetime | None = None, **changes: Any) -> PredictionRecord:
    record = PredictionRecord(
        prediction_id=f"p{i}",
        variant="champion",
        model_version="1",
        served=True,
        features={"x": i},
        prediction=i / 1000,
        latency_ms=1.0,
        entity_id=f"C{i}",
        ts=ts or START + timedelta(seconds=i),
    )
    return replace(record, **changes)


def _versions(log: PredictionLog) -> list[int]:
    with log.engine.connect() as db:
        return list(db.scalars(sa.select(SCHEMA_VERSIONS.c.version).order_by("version")))


def _explain(log: PredictionLog, query: sa.Select[object]) -> str:
    """SQLite's plan for `query`; the plan does not depend on the parameters' values."""
    compiled = query.compile(dialect=log.engine.dialect)
    parameters = tuple(None for _ in compiled.positiontup or [])
    with log.engine.connect() as db:
        rows = db.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", parameters).all()
    return "\n".join(str(row[-1]) for row in rows)


# --- schema --------------------------------------------------------------------------------------


def test_first_use_creates_the_tables_the_version_and_the_indexes(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "logs" / "predictions.sqlite"
    log = PredictionLog(_url(path))
    assert not path.exists(), "nothing is opened before the first use"
    frame = log.read()
    assert frame.empty
    assert list(frame.columns) == [*[c.name for c in PREDICTIONS.columns], "label"]
    inspector = sa.inspect(log.engine)
    assert {"predictions", "feedback", "prediction_log_schema"} <= set(inspector.get_table_names())
    assert _versions(log) == list(range(1, SCHEMA_VERSION + 1))
    indexes = {
        index["name"]
        for table in ("predictions", "feedback")
        for index in inspector.get_indexes(table)
    }
    assert indexes >= INDEXES
    for table in (PREDICTIONS, FEEDBACK):  # the steps built what the queries expect
        built = {column["name"] for column in inspector.get_columns(table.name)}
        assert built == {column.name for column in table.columns}
    with closing(sqlite3.connect(path)) as raw:
        # Not WAL, the one mode a file keeps for every program that opens it (see below).
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("delete",)


def _version_one_by_hand(path: Path) -> None:
    """A database as release 1 of the schema left it: both tables, no indexes, version 1."""
    with closing(sqlite3.connect(path)) as raw, raw:
        raw.executescript(
            """
            CREATE TABLE prediction_log_schema (
                version INTEGER PRIMARY KEY, applied_at DATETIME NOT NULL);
            INSERT INTO prediction_log_schema VALUES (1, '2026-01-01 00:00:00.000000');
            CREATE TABLE predictions (
                prediction_id TEXT NOT NULL, variant TEXT NOT NULL, ts DATETIME NOT NULL,
                entity_id TEXT, model_version TEXT NOT NULL, served BOOLEAN NOT NULL,
                features TEXT NOT NULL, prediction DOUBLE NOT NULL, latency_ms DOUBLE NOT NULL,
                PRIMARY KEY (prediction_id, variant));
            CREATE TABLE feedback (
                prediction_id TEXT NOT NULL PRIMARY KEY, ts DATETIME NOT NULL,
                label DOUBLE NOT NULL);
            INSERT INTO predictions VALUES
                ('old', 'champion', '2026-01-02 03:04:05.000000', NULL, '1', 1, '{}', 0.5, 1.0);
            INSERT INTO feedback VALUES ('old', '2026-01-03 00:00:00.000000', 1.0);
            """
        )


def test_an_older_database_gets_the_newer_steps_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "predictions.sqlite"
    _version_one_by_hand(path)
    replicas = [PredictionLog(_url(path)) for _ in range(2)]
    for replica in replicas:
        assert replica.ensure_schema() == SCHEMA_VERSION
    assert _versions(replicas[0]) == list(range(1, SCHEMA_VERSION + 1))
    names = {
        i["name"]
        for t in ("predictions", "feedback")
        for i in sa.inspect(replicas[0].engine).get_indexes(t)
    }
    assert names >= INDEXES
    old = replicas[1].read()
    assert list(old["prediction_id"]) == ["old"]
    assert old["ts"].iloc[0] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert list(old["label"]) == [1.0]
    history = replicas[1].label_history("old")
    assert list(history["label"]) == [1.0], "the labels stored before start the history"
    assert history["labelled_by"].isna().all()


def test_a_database_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "predictions.sqlite"
    PredictionLog(_url(path)).ensure_schema()
    newer = SCHEMA_VERSION + 1
    with closing(sqlite3.connect(path)) as raw, raw:
        raw.execute(
            "INSERT INTO prediction_log_schema VALUES (?, '2027-01-01 00:00:00.000000')", (newer,)
        )
    log = PredictionLog(_url(path))
    message = f"schema version {newer}, newer than version {SCHEMA_VERSION}"
    with pytest.raises(PredictionLogError, match=message):
        log.read()
    with pytest.raises(PredictionLogError, match=message):
        log.append([_prediction(1)])
    assert _versions(log) == [*range(1, SCHEMA_VERSION + 1), newer], "nothing was changed"


def test_replicas_starting_together_create_the_schema_once(tmp_path: Path) -> None:
    path = tmp_path / "predictions.sqlite"
    replicas = [PredictionLog(_url(path)) for _ in range(6)]
    start = threading.Barrier(len(replicas))
    errors: list[BaseException] = []

    def first_use(log: PredictionLog) -> None:
        start.wait()
        try:
            log.append([_prediction(id(log) % 1_000_000)])
        except BaseException as error:  # collected: the assertion below names it
            errors.append(error)

    threads = [threading.Thread(target=first_use, args=(log,)) for log in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _versions(replicas[0]) == list(range(1, SCHEMA_VERSION + 1))
    assert len(replicas[0].read()) == len(replicas)


# --- writing and reading -------------------------------------------------------------------------


def test_the_same_prediction_twice_is_one_row(tmp_path: Path) -> None:
    log = PredictionLog(_url(tmp_path / "predictions.sqlite"))
    assert log.append([_prediction(1, prediction=0.1)]).rows == 1
    assert log.append([_prediction(1, prediction=0.2), _prediction(1, prediction=0.3)]).rows == 1
    assert log.append([_prediction(1, variant="challenger", served=False)]).rows == 1
    log.append_feedback([FeedbackRecord("p1", label=0.0)])
    log.append_feedback([FeedbackRecord("p1", label=1.0)])
    frame = log.read()
    assert sorted(frame["variant"]) == ["challenger", "champion"]
    champion = frame[frame["variant"] == "champion"].iloc[0]
    assert champion["prediction"] == 0.3, "the last write of a key wins"
    assert set(frame["label"]) == {1.0}


def test_a_relabel_replaces_the_label_and_the_history_keeps_every_label(tmp_path: Path) -> None:
    """The rule: a prediction's label is its latest by time (replicas flush out of order, so
    not the last to arrive); every label stays in `label_history` with who gave it; a retried
    write counts no relabel and adds no history."""
    log = PredictionLog(_url(tmp_path / "predictions.sqlite"))
    log.append([_prediction(1), _prediction(2)])
    first = FeedbackRecord("p1", 0.0, ts=START + timedelta(hours=1), labelled_by="job")
    assert log.append_feedback([first]).relabels == 0
    second = FeedbackRecord("p1", 1.0, ts=START + timedelta(hours=2), labelled_by="reviewer")
    late = FeedbackRecord("p1", 0.0, ts=START + timedelta(hours=1, minutes=30), labelled_by="old")
    both = [second, late, FeedbackRecord("p2", 1.0, ts=START)]
    assert log.append_feedback(both).relabels == 2
    assert log.append_feedback(both).relabels == 0, "a retried batch is stored once"
    labels = log.read().set_index("prediction_id")["label"]
    assert labels.to_dict() == {"p1": 1.0, "p2": 1.0}, "the latest label by time wins"
    history = log.label_history("p1")
    assert list(history["labelled_by"]) == ["job", "old", "reviewer"]
    assert list(history["label"]) == [0.0, 0.0, 1.0]
    assert list(history["ts"].dt.tz_convert(UTC)) == [first.ts, late.ts, second.ts]
    assert log.prune(before=START + timedelta(hours=1, minutes=45)) == 2
    assert list(log.label_history("p1")["labelled_by"]) == ["reviewer"]


def test_read_filters_by_time_in_sql(tmp_path: Path) -> None:
    log = PredictionLog(_url(tmp_path / "predictions.sqlite"))
    east = timezone(timedelta(hours=2))
    log.append(
        [
            _prediction(1, START - timedelta(microseconds=1)),
            _prediction(2, START),  # fixed-width text sorts whole seconds right
            _prediction(3, START + timedelta(microseconds=500_000)),
            _prediction(4, datetime(2026, 3, 1, 1, 30, tzinfo=east)),  # 23:30 UTC the day before
            _prediction(5, datetime(2026, 3, 1, 2, 30, tzinfo=east)),  # 00:30 UTC
            _prediction(6, START + timedelta(hours=1), served=False),
            _prediction(7, START + timedelta(hours=1)),  # `until` is exclusive
        ]
    )
    window = log.read(since=START, until=START + timedelta(hours=1))
    assert list(window["prediction_id"]) == ["p2", "p3", "p5"]
    assert str(window["ts"].dt.tz) == "UTC"
    assert list(log.read(since=START + timedelta(hours=1))["prediction_id"]) == ["p6", "p7"]
    assert list(log.read(since=START + timedelta(hours=1), served=True)["prediction_id"]) == ["p7"]
    with pytest.raises(ValueError, match="time zone"):
        log.read(since=datetime(2026, 3, 1))  # naive: the mistake under test
    monitor = _explain(log, PredictionLog.query(START, START, served=True))
    assert "USING INDEX ix_predictions_ts_served (ts>? AND ts<?)" in monitor
    assert "USING INDEX ix_predictions_ts_served (ts>?)" in _explain(
        log, PredictionLog.query(START)
    )


def test_feedback_lookups_and_retention(tmp_path: Path) -> None:
    log = PredictionLog(_url(tmp_path / "predictions.sqlite"))
    log.append(
        [_prediction(1), _prediction(2, served=False), _prediction(3, START + timedelta(days=9))]
    )
    log.append_feedback([FeedbackRecord("p1", 1.0, ts=START + timedelta(days=1))])
    assert log.has_prediction("p1")
    assert not log.has_prediction("p2"), "a shadow prediction was never served"
    assert not log.has_prediction("p9")
    lookup = sa.select(sa.literal(1)).where(
        PREDICTIONS.c.prediction_id == "p1", PREDICTIONS.c.served == sa.true()
    )
    assert "USING INDEX sqlite_autoindex_predictions_1 (prediction_id=?)" in _explain(log, lookup)
    assert log.prune(before=START + timedelta(days=7)) == 2
    assert list(log.read()["prediction_id"]) == ["p3"]
    assert not log.has_prediction("p1")


def test_two_replicas_on_one_file_both_write_and_read_everything(tmp_path: Path) -> None:
    url = _url(tmp_path / "shared" / "predictions.sqlite")
    first, second = PredictionLog(url), PredictionLog(url)
    first.append([_prediction(1)])
    second.append([_prediction(2)])
    second.append_feedback([FeedbackRecord("p1", 1.0)])
    for replica in (first, second):
        frame = replica.read()
        assert list(frame["prediction_id"]) == ["p1", "p2"]
        assert frame["label"].iloc[0] == 1.0
        assert replica.has_prediction("p2")


# --- the service's buffer ------------------------------------------------------------------------


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Another process's writer holding the write lock: every write waits, then fails; reads
    go on (an EXCLUSIVE lock, a commit in progress, would stop them too)."""
    with closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")


def _messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def test_the_buffer_keeps_rows_while_the_database_is_locked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "predictions.sqlite"
    log = PredictionLog(_url(path, timeout="0.1"))
    log.ensure_schema()
    buffer = LogBuffer(log, max_rows=1_000, batch_rows=40)
    caplog.set_level(logging.WARNING)
    with locked(path):
        for flush in range(3):
            for i in range(100):
                buffer.add(_prediction(flush * 100 + i))
            asyncio.run(buffer.flush())
            assert buffer.counters.pending == 100 * (flush + 1)
        buffer.add(FeedbackRecord("p0", 1.0))
        asyncio.run(buffer.flush())
    assert buffer.counters.write_failures == 4
    assert buffer.counters.written == 0
    assert len(_messages(caplog, "cannot write the prediction log")) == 1, "once per outage"
    assert buffer.unreachable
    asyncio.run(buffer.flush())
    frame = log.read()
    assert sorted(frame["prediction_id"]) == sorted(f"p{i}" for i in range(300))
    assert frame.set_index("prediction_id").loc["p0", "label"] == 1.0
    counts = buffer.counters
    assert (counts.written, counts.dropped, counts.pending) == (301, 0, 0)
    assert len(_messages(caplog, "prediction log writes resumed")) == 1
    assert not buffer.unreachable


def test_beyond_the_bound_the_oldest_rows_are_dropped_and_counted(tmp_path: Path) -> None:
    """The loss of an outage, measured: everything beyond `max_rows`, oldest first."""
    path = tmp_path / "predictions.sqlite"
    log = PredictionLog(_url(path, timeout="0.1"))
    buffer = LogBuffer(log, max_rows=100, batch_rows=30)
    sent = 0
    with locked(path):
        for _ in range(5):
            for _ in range(50):
                buffer.add(_prediction(sent))
                sent += 1
            asyncio.run(buffer.flush())
            assert buffer.pending <= 100
    asyncio.run(buffer.flush())
    kept = log.read()["prediction_id"]
    lost = sent - len(kept)
    assert (sent, lost, buffer.counters.dropped) == (250, 150, 150)
    assert list(kept) == [f"p{i}" for i in range(150, 250)], "the newest rows are the ones kept"


def test_a_row_the_database_refuses_does_not_hold_back_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = PredictionLog(_url(tmp_path / "predictions.sqlite"))
    buffer = LogBuffer(log, max_rows=1_000)
    naive = datetime(2026, 3, 1)  # naive: no instant to store
    for i in range(10):
        buffer.add(_prediction(i, naive if i == 4 else None))
    caplog.set_level(logging.WARNING)
    asyncio.run(buffer.flush())
    assert len(log.read()) == 9
    assert (buffer.counters.written, buffer.counters.dropped, buffer.pending) == (9, 1, 0)
    assert _messages(caplog, "refused 1 rows")
    assert buffer.counters.write_failures == 0


# --- storage faults ------------------------------------------------------------------------------


def test_the_log_maps_no_shared_memory(tmp_path: Path) -> None:
    """WAL's `-shm` index is mapped into each process, and a write to a mapped page the disk
    can no longer back kills the process with SIGBUS. The log keeps a rollback journal and no
    memory map, so each storage fault is an error its buffer rides out (`tests/test_serve.py`
    makes each file immutable under a running service)."""
    path = tmp_path / "predictions.sqlite"
    first, second = PredictionLog(_url(path)), PredictionLog(_url(path))
    first.append([_prediction(1)])
    assert second.has_prediction("p1")
    second.append([_prediction(2)])
    assert len(first.read()) == 2
    with first.engine.connect() as db:
        assert db.exec_driver_sql("PRAGMA journal_mode").scalar() == "truncate"
        assert db.exec_driver_sql("PRAGMA mmap_size").scalar() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "predictions.sqlite",
        "predictions.sqlite-journal",
    ]


def test_a_database_an_earlier_release_left_in_wal_mode_leaves_it(tmp_path: Path) -> None:
    path = tmp_path / "predictions.sqlite"
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    log = PredictionLog(_url(path))
    log.append([_prediction(1)])
    assert list(log.read()["prediction_id"]) == ["p1"]
    assert not (tmp_path / "predictions.sqlite-wal").exists()
    assert not (tmp_path / "predictions.sqlite-shm").exists()


def _chattr(flag: str, paths: list[Path], prefix: list[str]) -> bool:
    chattr = shutil.which("chattr") or "chattr"
    done = subprocess.run(
        [*prefix, chattr, flag, *map(str, paths)], capture_output=True, check=False
    )
    return done.returncode == 0


def _chattr_prefix() -> list[str] | None:
    """How this process sets the immutable flag: directly as root, else through `sudo -n`
    (CI runners' passwordless sudo); None when it cannot."""
    if os.geteuid() == 0:
        return []
    sudo = shutil.which("sudo")
    if (
        sudo
        and subprocess.run([sudo, "-n", "true"], capture_output=True, check=False).returncode == 0
    ):
        return [sudo, "-n"]
    return None


@contextmanager
def fault_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder on a file system that can make a file immutable (`chattr +i`: ext4, XFS,
    btrfs, overlayfs; not tmpfs): the test's own, else one under /var/tmp. Skips, saying why,
    when no candidate can."""
    prefix = _chattr_prefix()
    if prefix is None:
        pytest.skip("chattr +i needs root or passwordless sudo (CAP_LINUX_IMMUTABLE)")
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed (Debian: e2fsprogs)")
    for candidate in (tmp_path, Path("/var/tmp")):  # noqa: S108 - a private mkdtemp inside
        if not candidate.is_dir():
            continue
        folder = Path(tempfile.mkdtemp(prefix="log-fault-", dir=candidate))
        probe = folder / "probe"
        probe.touch()
        if _chattr("+i", [probe], prefix):
            _chattr("-i", [probe], prefix)
            try:
                yield folder
            finally:
                _chattr("-i", list(folder.iterdir()), prefix)
                shutil.rmtree(folder)
            return
        shutil.rmtree(folder)
    pytest.skip(f"no file system here can make a file immutable (tried {tmp_path}, /var/tmp)")


@contextmanager
def immutable(paths: list[Path]) -> Iterator[None]:
    """A storage fault: the files cannot be changed, as on a file system remounted read-only
    after a disk error. Cleared on exit, whatever happened."""
    prefix = _chattr_prefix()
    assert prefix is not None, "no way to run chattr: fault_folder skips first"
    assert _chattr("+i", paths, prefix), f"chattr +i {paths}"
    try:
        yield
    finally:
        assert _chattr("-i", paths, prefix), f"chattr -i {paths}"
