"""benchmarks/cli_bench.py without a rendered project: its summary and verdicts on made-up
timings, and a whole run on a stand-in project whose console script is a shell script."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from helpers import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import cli_bench  # benchmarks/ is not a package: found through the path above

PACKAGE = "demo_ml_service"


def test_summary_is_min_median_max_of_the_timed_runs() -> None:
    summary = cli_bench.summarize([0.30, 0.10, 0.50, 0.20, 0.40])
    assert summary["count"] == 5
    assert (summary["min_s"], summary["median_s"], summary["max_s"]) == (0.10, 0.30, 0.50)
    assert summary["mean_s"] == pytest.approx(0.30)


@pytest.mark.parametrize(
    ("median", "passed"), [(0.49, True), (0.5, False), (0.51, False), (0.05, True)]
)
def test_a_target_is_met_only_when_the_median_is_under_it(median: float, passed: bool) -> None:
    command = cli_bench.Command("help", f"{PACKAGE} --help", ["x"], cli_bench.HELP_TARGET_S)
    # One slow outlier must not decide the verdict: the median does.
    found = cli_bench.verdict(command, cli_bench.summarize([median, median, 9.0]))
    assert found["passed"] is passed
    assert found["value_s"] == median
    assert found["threshold_s"] == 0.5


def stand_in(tmp_path: Path, script: str) -> tuple[Path, Path]:
    """A project folder (answers, store) and a venv: the python running these tests and a
    console script that is `script` in sh."""
    project = tmp_path / "project"
    project.mkdir()
    (project / ".copier-answers.yml").write_text(
        f"package_name: {PACKAGE}\nproject_slug: demo-ml-service\n", encoding="utf-8"
    )
    (project / "mlflow.db").write_bytes(b"")
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    console = bin_dir / PACKAGE
    console.write_text(f"#!/bin/sh\n{script}\n", encoding="utf-8")
    console.chmod(0o755)
    return project, tmp_path / "venv"


def run(project: Path, venv: Path, out: Path) -> int:
    args = ["--project", str(project), "--venv", str(venv), "--out", str(out), "--runs", "3"]
    return cli_bench.main(args)


@pytest.mark.skipif(os.name != "posix", reason="the stand-in console script is a shell script")
def test_a_run_reports_raw_timings_summaries_and_verdicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Run from the project folder with the project's store: or the measurement fails.
    in_project = '[ "${PWD##*/}" = project ] && [ -n "$MLFLOW_TRACKING_URI" ] && echo usage'
    project, venv = stand_in(tmp_path, in_project)
    out = tmp_path / "cli.json"
    assert run(project, venv, out) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert list(report["commands"]) == ["python", "help", "models"]
    for result in report["commands"].values():
        assert len(result["warmup_s"]) == 1
        assert len(result["runs_s"]) == 3
        assert result["summary"]["min_s"] == min(result["runs_s"])
    assert report["commands"]["models"]["argv"] == [
        str(venv.absolute() / "bin" / PACKAGE),
        "models",
    ]
    assert set(report["targets"]) == {"help_median_s", "models_median_s"}
    assert all(target["passed"] for target in report["targets"].values())  # sh starts fast
    printed = capsys.readouterr().out
    assert f"{PACKAGE} --help" in printed
    assert f"target {PACKAGE} models median < 3 s" in printed


@pytest.mark.skipif(os.name != "posix", reason="the stand-in console script is a shell script")
def test_a_command_that_fails_fails_the_measurement_with_its_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = 'if [ "$1" = models ]; then echo "ModuleNotFoundError: no tracking" >&2; exit 3; fi'
    project, venv = stand_in(tmp_path, script)
    out = tmp_path / "cli.json"
    assert run(project, venv, out) == 2
    error = capsys.readouterr().err
    assert f"`{PACKAGE} models` exited with code 3" in error
    assert "ModuleNotFoundError: no tracking" in error
    assert not out.exists()
