"""CLI start-up benchmark: wall time of the generated project's command line, from exec to exit.

Three commands, each run `--warmup` times unmeasured and then `--runs` times, one after the other:

* `python -c pass` with the project's python: the interpreter and site-packages alone;
* `<package> --help`: the console script, the CLI module and what it imports to start;
* `<package> models`: a command that loads the project's configuration and reads its registry.

Usage, on a project rendered with default answers whose `nox -s pipeline` has run:

    python benchmarks/cli_bench.py --project <rendered project> --out <report.json>

The commands come from the project's own virtualenv (`.nox/pipeline`, or the one `--venv` names,
such as a project's `.venv`) and run with the project folder as working directory and the
environment serve_bench.py gives the project's processes. This script needs only the standard
library. It is a measurement, not a test: a missed target is reported and the exit code stays 0.
It exits 2 when the measurement itself failed (a command exited non-zero or timed out, the
project is not rendered or not trained).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import serve_bench as sb

HELP_TARGET_S = 0.5  # `<package> --help`, median wall time
MODELS_TARGET_S = 3.0  # `<package> models`, median wall time
TARGET_CORES = 2  # the machine the targets are set for
TAIL_CHARACTERS = 3000  # of a failed command's stderr, in the error message
VERSION_SNIPPET = "import json, platform; print(json.dumps({'python': platform.python_version()}))"


@dataclass(frozen=True)
class Settings:
    """What one run measures; recorded in the report so runs can be compared."""

    warmup: int
    runs: int
    timeout: float


@dataclass(frozen=True)
class Command:
    """One measured command line: `key` names it in the report, `label` in the table."""

    key: str
    label: str
    argv: list[str]
    target_s: float | None = None  # its median must be under this


@dataclass(frozen=True)
class Timings:
    """Wall seconds of every run of one command, and the rest of the machine's CPU meanwhile."""

    warmup: list[float]
    runs: list[float]
    background_cores: float | None


def commands(project: sb.Project) -> list[Command]:
    script = str(project.venv / "bin" / project.package)
    return [
        Command("python", "python -c pass", [str(project.python), "-c", "pass"]),
        Command("help", f"{project.package} --help", [script, "--help"], HELP_TARGET_S),
        Command("models", f"{project.package} models", [script, "models"], MODELS_TARGET_S),
    ]


# ------------------------------------------------------------------------------------------------
# Measurement
# ------------------------------------------------------------------------------------------------


def tail(output: bytes | None) -> str:
    text = (output or b"").decode(errors="replace").strip()
    return text[-TAIL_CHARACTERS:] or "(empty)"


def run_once(command: Command, cwd: Path, env: Mapping[str, str], timeout: float) -> float:
    """Wall seconds from start to exit; a non-zero exit or a timeout fails the measurement."""
    started = time.perf_counter()
    try:
        done = subprocess.run(  # noqa: S603 - the project's own interpreter and console script
            command.argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise sb.BenchError(
            f"`{command.label}` did not exit within {timeout:g}s; stderr:\n{tail(error.stderr)}"
        ) from None
    spent = time.perf_counter() - started
    if done.returncode != 0:
        raise sb.BenchError(
            f"`{command.label}` exited with code {done.returncode} "
            f"({' '.join(command.argv)} in {cwd}); stderr:\n{tail(done.stderr)}"
        )
    return spent


def cli_env(project: sb.Project) -> dict[str, str]:
    """The project's environment, with bytecode caching on as on a user's machine: a machine that
    sets PYTHONDONTWRITEBYTECODE recompiles every module not yet cached on every start, which
    would time the compiler, not the command."""
    env = sb.project_env(project)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def measure(command: Command, project: sb.Project, settings: Settings) -> Timings:
    """The warm-up runs (which also write the bytecode cache), then the timed ones and the other
    processes' CPU while they ran."""
    env = cli_env(project)
    note(f"{command.label}: {settings.warmup} warm-up and {settings.runs} timed runs")
    warmup = [
        run_once(command, project.root, env, settings.timeout) for _ in range(settings.warmup)
    ]
    before = sb.cpu_sample()
    runs = [run_once(command, project.root, env, settings.timeout) for _ in range(settings.runs)]
    return Timings(warmup, runs, sb.background_cores(before, sb.cpu_sample()))


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------


def summarize(seconds: Sequence[float]) -> dict[str, float]:
    return {
        "count": len(seconds),
        "min_s": min(seconds),
        "median_s": statistics.median(seconds),
        "max_s": max(seconds),
        "mean_s": statistics.fmean(seconds),
    }


def verdict(command: Command, summary: Mapping[str, float]) -> dict[str, Any]:
    """A target is met when the median is strictly under it."""
    if command.target_s is None:
        raise ValueError(f"{command.key} has no target")
    return {
        "description": f"{command.label} median < {command.target_s:g} s",
        "threshold_s": command.target_s,
        "value_s": summary["median_s"],
        "passed": summary["median_s"] < command.target_s,
    }


def build_report(
    *,
    project: sb.Project,
    settings: Settings,
    measured: Sequence[tuple[Command, Timings]],
    python_version: str,
) -> dict[str, Any]:
    """Raw timings, their summaries and the targets' verdicts, as one JSON-ready mapping."""
    results: dict[str, Any] = {}
    targets: dict[str, Any] = {}
    for command, timings in measured:
        summary = summarize(timings.runs)
        results[command.key] = {
            "label": command.label,
            "argv": command.argv,
            "warmup_s": timings.warmup,
            "runs_s": timings.runs,
            "summary": summary,
            "background_cores": timings.background_cores,
        }
        if command.target_s is not None:
            targets[f"{command.key}_median_s"] = verdict(command, summary)
    noise = {key: result["background_cores"] for key, result in results.items()}
    return {
        "project": {"root": str(project.root), "package": project.package},
        "settings": asdict(settings),
        "environment": {
            "venv": str(project.venv),
            "python": python_version,
            "PYTHONDONTWRITEBYTECODE": cli_env(project).get("PYTHONDONTWRITEBYTECODE"),
            "cpus": os.cpu_count(),
            "target_cpus": TARGET_CORES,
            "platform": platform.platform(),
        },
        "commands": results,
        "targets": targets,
        "noise": {
            "threshold_cores": sb.NOISY_CORES,
            "background_cores": noise,
            "noisy": any(value is not None and value > sb.NOISY_CORES for value in noise.values()),
        },
    }


def render(report: Mapping[str, Any]) -> str:
    """One line per command, then the verdicts."""
    results = report["commands"]
    floor = results["python"]["summary"]["median_s"] if "python" in results else None
    rows = [
        [
            "command",
            "runs",
            "min (s)",
            "median (s)",
            "max (s)",
            "median - python (s)",
            "other CPU (cores)",
        ]
    ]
    for key, result in results.items():
        summary = result["summary"]
        over = "" if floor is None or key == "python" else f"{summary['median_s'] - floor:.3f}"
        rows.append(
            [
                result["label"],
                str(summary["count"]),
                f"{summary['min_s']:.3f}",
                f"{summary['median_s']:.3f}",
                f"{summary['max_s']:.3f}",
                over,
                sb.cores(result["background_cores"]),
            ]
        )
    verdicts = [
        f"target {target['description']}: {target['value_s']:.3f} -> "
        f"{'PASS' if target['passed'] else 'MISS'}"
        for target in report["targets"].values()
    ]
    return "\n\n".join([sb.table(rows), "\n".join(verdicts)])


def warnings(report: Mapping[str, Any]) -> list[str]:
    """A busy machine or one of another size: the figures do not compare with the targets."""
    messages = []
    busy = {
        result["label"]: result["background_cores"]
        for result in report["commands"].values()
        if (result["background_cores"] or 0.0) > sb.NOISY_CORES
    }
    if busy:
        during = ", ".join(f"{cores:.2f} cores during {label}" for label, cores in busy.items())
        messages.append(f"warning: other processes used {during}; run again")
    cpus = report["environment"]["cpus"]
    if cpus != TARGET_CORES:
        messages.append(f"note: the targets are for {TARGET_CORES} cores, this machine has {cpus}")
    return messages


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------


def note(message: str) -> None:
    print(f"[cli-bench] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> tuple[Path, Path, Path | None, Settings]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--project", type=Path, required=True, help="rendered, trained project")
    parser.add_argument("--out", type=Path, required=True, help="JSON report to write")
    parser.add_argument(
        "--venv",
        type=Path,
        help="virtualenv whose bin/python and bin/<package> are measured "
        "(default: <project>/.nox/pipeline)",
    )
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each command")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured runs before them")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one run may take")
    args = parser.parse_args(argv)
    for name in ("runs", "timeout"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    settings = Settings(warmup=args.warmup, runs=args.runs, timeout=args.timeout)
    return args.project, args.out, args.venv, settings


def run(project_root: Path, out: Path, venv: Path | None, settings: Settings) -> dict[str, Any]:
    """Each command in turn, never two at once; the report is written only when all ran."""
    project = sb.open_project(project_root, venv)
    script = project.venv / "bin" / project.package
    if not script.is_file():
        raise sb.BenchError(
            f"{script} not found: is {project.package} installed in {project.venv}?"
        )
    python_version = str(sb.run_snippet(project, VERSION_SNIPPET, [])["python"])
    measured = [(command, measure(command, project, settings)) for command in commands(project)]
    report = build_report(
        project=project, settings=settings, measured=measured, python_version=python_version
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    project_root, out, venv, settings = parse_args(argv)
    try:
        report = run(project_root, out, venv, settings)
    except sb.BenchError as error:
        print(f"cli-bench: error: {error}", file=sys.stderr)
        return 2
    print(render(report))
    for message in warnings(report):
        print(message)
    print(f"\nreport written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
