"""Model families benchmark: each registered family's compiled form against its library's own
predict, on one row (as `/predict` scores it, from the request's dict) and on a batch (as
`batch-predict` scores a validated frame).

For every family the project's registry holds, on the project's task and its latest snapshot:
train and register it (`train --family`), then load the version twice, through its compiled
form and through its library (`serve.scoring: scikit-learn`), and time both on the same rows,
interleaved. Reported per family: the median milliseconds of one row and of a batch, the
library's time over the compiled form's (above 1: the compiled form is faster), the largest
score difference, and why a family has no compiled form.

Usage, on a project rendered with default answers whose `nox -s pipeline` has run (every
family's extra is installed into that venv first):

    python benchmarks/family_bench.py --project <project> --out <json>

Standard library only. A measurement, not a test: figures are reported and the exit code stays
0; it exits 2 when the measurement itself failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import serve_bench as sb

ONE_ROW_ITERATIONS = 300
BATCH_ROWS = 10_000
BATCH_ITERATIONS = 5

# Runs with the project's python: trains each family and times its two scorers.
SNIPPET = """
import importlib, json, statistics, sys, tempfile, time
from pathlib import Path
import numpy as np
import pandas as pd

package, root = sys.argv[1], Path(sys.argv[2])
one_row_iterations, batch_rows, batch_iterations = (int(a) for a in sys.argv[3:6])
config = importlib.import_module(f"{package}.config")
data = importlib.import_module(f"{package}.data")
families = importlib.import_module(f"{package}.families")
scoring = importlib.import_module(f"{package}.scoring")
registry = importlib.import_module(f"{package}.serve.registry")
store_module = importlib.import_module(f"{package}.store")
train = importlib.import_module(f"{package}.train").train

project = config.load_project(root / "configs" / "project.yaml")
snapshot = data.read_snapshot(project.snapshots_dir)
schema, task = snapshot.schema, project.config.train.task
holdout = snapshot.holdout.reset_index(drop=True)
records = scoring.request_records(holdout, schema)
batch = pd.concat([holdout] * (batch_rows // len(holdout) + 1), ignore_index=True).head(batch_rows)
store = store_module.Store.open(project)


def median_ms(work, items):
    times = []
    for item in items:
        started = time.perf_counter_ns()
        work(item)
        times.append(time.perf_counter_ns() - started)
    return statistics.median(times) / 1e6


report = {}
for kind in families.KINDS:
    result = train(project, family=kind)
    version = str(result.version)
    tags = store.client.get_model_version(store.model_name, version).tags
    entry = {"version": version, "scoring": tags["scoring"],
             "compiled_refused": tags.get("compiled_refused")}
    with tempfile.TemporaryDirectory() as folder:
        downloaded = store.download_version(version, Path(folder))
        load = lambda compiled: scoring.load_scorer(
            downloaded, registry.load_model, schema, task, compiled=compiled)
        scorers = {"library": load(False)}
        if tags["scoring"] == scoring.COMPILED:
            scorers["compiled"] = load(True)
    rows = [records[i % len(records)] for i in range(one_row_iterations)]
    for name, scorer in scorers.items():
        scorer.score_records(rows[:20])  # warm up
    for name, scorer in scorers.items():
        entry[f"{name}_one_row_ms"] = median_ms(lambda row: scorer.score_records([row]), rows)
        entry[f"{name}_batch_ms"] = median_ms(scorer.score_frame, [batch] * batch_iterations)
    if "compiled" in scorers:
        gap = scoring.score_gap(scorers["compiled"].score_frame(batch),
                                scorers["library"].score_frame(batch))
        entry["largest_difference"] = float(np.max(gap))
    report[kind] = entry
print(json.dumps({"task": task, "rows": {"batch": batch_rows}, "families": report}))
"""


def install_every_family(project: sb.Project) -> list[str]:
    """Install the extras of every family into the project's venv: the registry's families are
    the extras of its pyproject.toml that are not engines (spark)."""
    pyproject = tomllib.loads((project.root / "pyproject.toml").read_text(encoding="utf-8"))
    extras = sorted(set(pyproject["project"].get("optional-dependencies", {})) - {"spark"})
    subprocess.run(  # noqa: S603 - uv, installing the project's own extras
        [
            sys.executable,
            "-m",
            "uv",
            "pip",
            "install",
            "--quiet",
            "-p",
            str(project.python),
            "-e",
            f"{project.root}[{','.join(extras)}]",
        ],
        check=True,
    )
    return extras


def render(report: dict[str, Any]) -> str:
    rows = [
        [
            "family",
            "scoring",
            "one row ms (compiled / library)",
            "batch ms",
            "library / compiled (one row, batch)",
            "largest difference",
        ]
    ]
    for kind, entry in report["families"].items():
        compiled = "compiled_one_row_ms" in entry
        one = f"{entry['compiled_one_row_ms']:.3f} / " if compiled else "- / "
        many = f"{entry['compiled_batch_ms']:.1f} / " if compiled else "- / "
        ratios = "-"
        if compiled:
            ratios = (
                f"{entry['library_one_row_ms'] / entry['compiled_one_row_ms']:.1f}x, "
                f"{entry['library_batch_ms'] / entry['compiled_batch_ms']:.1f}x"
            )
        rows.append(
            [
                kind,
                entry["scoring"],
                one + f"{entry['library_one_row_ms']:.3f}",
                many + f"{entry['library_batch_ms']:.1f}",
                ratios,
                f"{entry['largest_difference']:.1e}" if compiled else entry["compiled_refused"],
            ]
        )
    batch = report["rows"]["batch"]
    head = f"Model families, {report['task']}: one row, and a batch of {batch:,} rows"
    return f"{head}\n{sb.table(rows)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--batch-rows", type=int, default=BATCH_ROWS)
    args = parser.parse_args(argv)
    try:
        project = sb.open_project(args.project)
        install_every_family(project)
        report = sb.run_snippet(
            project,
            SNIPPET,
            [
                project.package,
                str(project.root),
                str(ONE_ROW_ITERATIONS),
                str(args.batch_rows),
                str(BATCH_ITERATIONS),
            ],
        )
    except (sb.BenchError, subprocess.CalledProcessError) as error:
        print(f"family bench failed: {error}", file=sys.stderr)
        return 2
    report["machine"] = {"platform": platform.platform(), "cores": os.cpu_count()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(render(report))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
