"""Batch scoring benchmark: the generated project's pandas engine and its Spark engine
(`batch-predict --engine spark --master local[2]`) on one large synthetic table.

Both score the same Parquet file (demo rows, typed, a few of them invalid) with the same
champion, each as the `batch-predict` command a team would run, one after the other. Reported per
engine: wall time, rows per second and the peak resident memory of the command's whole process
tree (Spark's JVM and Python workers included), sampled from /proc. Each engine runs twice, on
the full table and on a tenth of it: memory that stays bounded does not grow with the rows.

Usage, on a project rendered with default answers whose `nox -s pipeline` has run, with a venv
that holds the project's `spark` extra (its `nox -s spark --install-only` makes one):

    python benchmarks/batch_bench.py --project <project> --venv <project>/.nox/spark --out <json>

This script needs only the standard library. It is a measurement, not a test: figures are
reported and the exit code stays 0; it exits 2 when the measurement itself failed. POSIX only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import serve_bench as sb

ROWS = 10_000_000
CHUNK_ROWS = 1_000_000  # rows generated (and held) at once while writing the table
BOUNDED_GROWTH = 1.5  # peak memory on the full table over the peak on a tenth of it, at most
SAMPLE_SECONDS = 0.2

# Runs with the project's python: `rows` demo rows (no target) into one Parquet file, chunk by
# chunk, in row groups of 100,000 rows. The demo's text in a numeric column ("unknown") is made
# a number, so the file is typed.
TABLE_SNIPPET = """
import importlib, json, sys
from pathlib import Path
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

package, root, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
rows, chunk = int(sys.argv[4]), int(sys.argv[5])
ROW_GROUP = 100_000  # as HEAD_SNIPPET's batches: both files read alike, so memory compares
config = importlib.import_module(f"{package}.config")
data = importlib.import_module(f"{package}.data")
project = config.load_project(root / "configs" / "project.yaml")
schema = data.project_schema(project)
writer, written, seed = None, 0, 0
while written < rows:
    size = min(chunk, rows - written)
    settings = config.DemoSourceConfig(rows=max(size, 200), seed=1_000 + seed)
    frame = data.generate_demo(settings, project.config.train.task).head(size)
    frame = frame.drop(columns=[schema.target.name])
    for name in schema.numeric_features:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    writer = writer or pq.ParquetWriter(out, table.schema)
    writer.write_table(table.cast(writer.schema), row_group_size=ROW_GROUP)
    written, seed = written + size, seed + 1
writer.close()
print(json.dumps({"rows": written, "bytes": out.stat().st_size}))
"""

# Runs with the project's python: the first `rows` rows of a Parquet file into another.
HEAD_SNIPPET = """
import json, sys
import pyarrow.parquet as pq

source, out, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
reader, writer, written = pq.ParquetFile(source), None, 0
for batch in reader.iter_batches(batch_size=100_000):
    batch = batch.slice(0, rows - written)
    writer = writer or pq.ParquetWriter(out, batch.schema)
    writer.write_batch(batch)
    written += batch.num_rows
    if written >= rows:
        break
writer.close()
print(json.dumps({"rows": written}))
"""


@dataclass(frozen=True)
class Run:
    engine: str
    rows: int
    seconds: float
    peak_kib: int
    output: str  # the command's last line

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def note(message: str) -> None:
    print(f"[batch-bench] {message}", file=sys.stderr, flush=True)


def tree_rss_kib(root: int) -> int:
    """Resident memory of `root` and every process descended from it, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text(encoding="utf-8")
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid, parent = int(entry.name), int(fields.get("PPid", "0").strip())
        children.setdefault(parent, []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def score(project: sb.Project, engine: str, table: Path, rows: int, scratch: Path) -> Run:
    """One `batch-predict` command, timed, its process tree's memory sampled until it ends."""
    out = scratch / f"{engine}-{rows}.parquet"
    shutil.rmtree(out, ignore_errors=True)
    out.unlink(missing_ok=True)
    argv = [str(project.python), "-m", project.package, "batch-predict", str(table), str(out)]
    argv += ["--engine", engine, *(["--master", "local[2]"] if engine == "spark" else [])]
    note(f"{engine}: scoring {rows:,} rows")
    log = scratch / f"{engine}-{rows}.log"
    with log.open("wb") as sink:
        began = time.perf_counter()
        process = subprocess.Popen(  # noqa: S603 - the project's own command
            argv, cwd=project.root, env=sb.project_env(project), stdout=sink, stderr=sink
        )
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss_kib(process.pid))
            time.sleep(SAMPLE_SECONDS)
        seconds = time.perf_counter() - began
    text = log.read_text(encoding="utf-8", errors="replace")
    if process.returncode != 0:
        raise sb.BenchError(f"{engine} exited {process.returncode}:\n{text[-3000:]}")
    lines = [line for line in text.splitlines() if line.startswith("scored ")]
    return Run(engine, rows, seconds, peak, lines[-1] if lines else "")


def summarise(table: dict[str, Any], runs: list[Run]) -> dict[str, Any]:
    def figures(run: Run) -> dict[str, Any]:
        return {
            "rows": run.rows,
            "seconds": run.seconds,
            "rows_per_second": run.rows_per_second,
            "peak_mib": run.peak_kib / 1024,
            "output": run.output,
        }

    engines: dict[str, dict[str, Any]] = {}
    for run in runs:
        engines.setdefault(run.engine, {})["full" if run.rows == table["rows"] else "tenth"] = (
            figures(run)
        )
    for found in engines.values():
        growth = found["full"]["peak_mib"] / found["tenth"]["peak_mib"]
        found["memory_growth"] = growth
        found["memory_bounded"] = growth <= BOUNDED_GROWTH
    return {
        "table": table,
        "engines": engines,
        "spark_over_pandas_rows_per_second": engines["spark"]["full"]["rows_per_second"]
        / engines["pandas"]["full"]["rows_per_second"],
        "environment": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }


def render(summary: dict[str, Any]) -> str:
    rows = [["engine", "rows", "seconds", "rows/s", "peak MiB", "peak MiB, a tenth", "bounded"]]
    for name, found in summary["engines"].items():
        full, tenth = found["full"], found["tenth"]
        rows.append(
            [
                "pandas (one process)" if name == "pandas" else "spark local[2]",
                f"{full['rows']:,}",
                f"{full['seconds']:.1f}",
                f"{full['rows_per_second']:,.0f}",
                f"{full['peak_mib']:.0f}",
                f"{tenth['peak_mib']:.0f}",
                "yes" if found["memory_bounded"] else "NO",
            ]
        )
    ratio = summary["spark_over_pandas_rows_per_second"]
    return f"{sb.table(rows)}\n\nspark / pandas, rows per second: {ratio:.2f}"


def run(project_root: Path, venv: Path, out: Path, rows: int) -> dict[str, Any]:
    project = sb.open_project(project_root, venv)
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as folder:
        scratch = Path(folder)
        table_path, tenth_path = scratch / "table.parquet", scratch / "tenth.parquet"
        note(f"writing {rows:,} demo rows to one Parquet file")
        args = [project.package, str(project.root), str(table_path), str(rows), str(CHUNK_ROWS)]
        table = sb.run_snippet(project, TABLE_SNIPPET, args)
        sb.run_snippet(project, HEAD_SNIPPET, [str(table_path), str(tenth_path), str(rows // 10)])
        runs = []
        for engine in ("pandas", "spark"):
            runs.append(score(project, engine, tenth_path, rows // 10, scratch))
            runs.append(score(project, engine, table_path, rows, scratch))
    summary = summarise(table, runs)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--project", type=Path, required=True, help="rendered, trained project")
    parser.add_argument("--venv", type=Path, required=True, help="venv with the spark extra")
    parser.add_argument("--out", type=Path, required=True, help="JSON report to write")
    parser.add_argument("--rows", type=int, default=ROWS, help="rows in the table")
    args = parser.parse_args(argv)
    if args.rows < 1_000:
        parser.error("--rows must be at least 1000")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = run(args.project, args.venv, args.out, args.rows)
    except sb.BenchError as error:
        print(f"batch-bench: error: {error}", file=sys.stderr)
        return 2
    print(render(summary))
    print(f"\nreport written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
