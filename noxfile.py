"""Sessions of the template repository: `nox -s tests`, `nox -s lint`, `nox -s demo`, the
measurements `nox -s bench` and `nox -s reliability`, and the generators `nox -s families` and
`nox -s import-names`."""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path

import nox

nox.needs_version = ">=2025.10"
nox.options.default_venv_backend = "uv"
nox.options.sessions = ["tests"]

ROOT = Path(__file__).resolve().parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
DEMO_DIR = ROOT / "demo"

# For the generated project's own nox run. The machine may set PYTHONDONTWRITEBYTECODE=1, which
# makes every import in a fresh uv venv 2-3x slower (no .pyc is ever written); an empty value
# turns it off, so bytecode is written on first import instead of compiled up front for every
# installed package (UV_COMPILE_BYTECODE stays off). The variables of this session's own venv
# are dropped so that the inner nox starts clean.
PROJECT_ENV: dict[str, str | None] = {
    "PYTHONDONTWRITEBYTECODE": "",
    "VIRTUAL_ENV": None,
    "NOX_CURRENT_SESSION": None,
}


# pytest-xdist on every core. `loadgroup` with no group marks hands out one test at a time (each
# worker holds its current test and one more), in collection order: the slow files first
# (tests/conftest.py), so the long tests start at once and the short ones fill the gaps. No test
# may rely on running in the worker of another: pytest 9.2 ignores the node id that xdist 3.8
# rewrites to group tests, so `xdist_group` marks would be silently dropped.
PARALLEL = ["-n", "auto", "--dist", "loadgroup", "--no-loadscope-reorder"]
# Every process the tests start runs one native thread: with a worker per core, scikit-learn's
# OpenMP and the BLAS threads would oversubscribe them (the generated suite alone took 307 s
# instead of 208 s on 2 cores). A value already set wins.
ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@nox.session
def tests(session: nox.Session) -> None:
    """Render the template with every option set; run generated projects' sessions (slow).
    `-- -n 0` runs in one process; `-- --full-matrix` runs every option set's whole suite."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "test"))
    threads = {name: os.environ.get(name, "1") for name in ONE_THREAD}
    session.run("pytest", *PARALLEL, *session.posargs, env=threads)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check and mypy --strict on this repository's own code."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")  # strict, on the files that pyproject.toml lists


def render_trained(session: nox.Session, project: Path, *, train: bool) -> None:
    """Render the template's defaults into `project` (replacing it) and, if asked, run its
    pipeline there. --vcs-ref HEAD renders the working tree, uncommitted changes included
    (without it copier would render the latest git tag)."""
    shutil.rmtree(project, ignore_errors=True)
    project.parent.mkdir(parents=True, exist_ok=True)
    session.run(
        "copier",
        "copy",
        "--trust",
        "--defaults",
        "--quiet",
        "--vcs-ref",
        "HEAD",
        str(ROOT),
        str(project),
    )
    if train:
        session.chdir(project)
        session.run("nox", "-s", "pipeline", env=PROJECT_ENV)


@nox.session
def demo(session: nox.Session) -> None:
    """Render the template with its defaults and run the project's whole loop (`nox -s loop`):
    train a champion, serve it, send traffic, drift, monitor, retrain, watch the service switch
    to the new champion, and write reports/loop.html. One line per step, with its wall time.

    The project goes to demo/<project_slug> (git-ignored, replaced on every run) or to the
    folder given after `--`, which must not exist yet: `nox -s demo -- ../my-service`.
    """
    started = time.monotonic()
    session.install("copier>=9.4", "nox>=2025.10", "uv>=0.9")  # only what rendering and nox need
    if len(session.posargs) > 1:
        session.error("give at most one destination folder")
    target = Path(session.posargs[0]).resolve() if session.posargs else None
    if target is not None and target.exists() and any(target.iterdir()):
        session.error(f"{target} exists and is not empty")

    staging = DEMO_DIR / ".rendering"
    render_trained(session, staging, train=False)
    answers = _answers(staging / ".copier-answers.yml")
    if target is None:
        target = DEMO_DIR / answers["project_slug"]
        if target.exists():
            session.log(f"replacing the previous demo project in {target}")
            shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(staging, target)
    shown = target.relative_to(ROOT) if target.is_relative_to(ROOT) else target
    session.log(f"[{time.monotonic() - started:5.1f} s] render: {shown}")

    session.chdir(target)
    session.run("nox", "-s", "loop", env=PROJECT_ENV)
    session.log(f"Open {target / 'reports' / 'loop.html'} for the loop on one page.")
    cli = Path(".nox", "loop", "bin", answers["package_name"])
    session.log(f"Browse the runs with the MLflow UI: cd {target} && {cli} ui")
    session.log(f"The demo took {time.monotonic() - started:.0f} s.")


@nox.session
def bench(session: nox.Session) -> None:
    """Serving speed against an empty endpoint and `mlflow models serve`, and CLI start-up, of a
    rendered demo project.

    Measured in one run on the same project: an empty FastAPI endpoint (the service's request
    model, a constant answer), the service scoring through the champion's compiled form, the
    same service through scikit-learn, `mlflow models serve`; then `python -c pass`,
    `<package> --help` and `<package> models` from the project's venv.

    Then every model family's compiled form against its library's own predict, one row and a
    batch of 10,000 (benchmarks/family_bench.py, which installs every family's extra).

    Prints three tables and writes JSON: `.bench/serve.json` (`-- --out <path>` and the other
    options of benchmarks/serve_bench.py pass through to it), `.bench/cli.json`
    (benchmarks/cli_bench.py with its defaults) and `.bench/families.json`. Targets are
    reported, not asserted.
    """
    folder = measure(session, "serve_bench.py", project="project", report="serve.json")
    session.run(
        "python",
        str(ROOT / "benchmarks" / "cli_bench.py"),
        "--project",
        str(folder),
        "--out",
        str(ROOT / ".bench" / "cli.json"),
    )
    session.run(
        "python",
        str(ROOT / "benchmarks" / "family_bench.py"),
        "--project",
        str(folder),
        "--out",
        str(ROOT / ".bench" / "families.json"),
    )


@nox.session(name="batch-bench")
def batch_bench(session: nox.Session) -> None:
    """Batch scoring of a 10-million-row table: the pandas engine and Spark `local[2]`.

    Renders and trains the defaults (.bench/batch-project), installs its `spark` extra
    (`nox -s spark --install-only`; Spark needs Java 17+), then prints a table and writes
    `.bench/batch.json`: rows per second and peak memory of each engine, on the table and on a
    tenth of it. `-- --rows 1000000` and the other options of benchmarks/batch_bench.py pass
    through. Reported, not asserted.
    """
    session.install(*nox.project.dependency_groups(PYPROJECT, "test"))
    folder = ROOT / ".bench" / "batch-project"
    render_trained(session, folder, train=True)
    session.run("nox", "-s", "spark", "--install-only", env=PROJECT_ENV)
    out = [] if "--out" in session.posargs else ["--out", str(ROOT / ".bench" / "batch.json")]
    script = ROOT / "benchmarks" / "batch_bench.py"
    venv = ["--venv", str(folder / ".nox" / "spark")]
    session.run("python", str(script), "--project", str(folder), *venv, *session.posargs, *out)


@nox.session
def reliability(session: nox.Session) -> None:
    """The rendered service under fuzzing, load near its measured capacity, a SIGKILL, a
    registry outage and hostile input (benchmarks/hostile.py).

    Prints a table and writes JSON (default `.bench/reliability.json`; `-- --duration 10` and the
    other options of benchmarks/reliability.py pass through). Asserted: the session fails when a
    promise does not hold. Its own project (.bench/reliability-project), so that `bench` and this
    session never measure a project the other has just logged predictions into.
    """
    measure(session, "reliability.py", project="reliability-project", report="reliability.json")


@nox.session(venv_backend="none")
def families(session: nox.Session) -> None:
    """Regenerate copier.yml's `model_family` choices, template/cookiecutter.json's list and the
    family table in docs/questions.md from the package's families/ modules
    (tests/model_families.py, standard library only)."""
    script = ROOT / "tests" / "model_families.py"
    session.run(sys.executable, str(script), "--write", external=True)


@nox.session(name="import-names")
def import_names(session: nox.Session) -> None:
    """Regenerate template/import-names.jinja, the import names `package_name` may not take:
    render the defaults into .bench/import-names-project, install it with every extra and
    dependency group (`uv sync`), and add what that environment can import (`-- --fresh`
    drops the names listed before)."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "test"))
    folder = ROOT / ".bench" / "import-names-project"
    render_trained(session, folder, train=False)
    session.chdir(folder)
    # The project's own .venv: under nox, uv would otherwise sync this session's venv.
    venv = folder / ".venv"
    sync_env = {**PROJECT_ENV, "UV_PROJECT_ENVIRONMENT": str(venv)}
    session.run("uv", "sync", "--all-extras", "--all-groups", env=sync_env)
    answers = _answers(folder / ".copier-answers.yml")
    script = ROOT / "tests" / "import_names.py"
    own = ["--own", answers["package_name"]]
    session.run("python", str(script), *own, *session.posargs, str(venv / "bin" / "python"))


def measure(session: nox.Session, script: str, *, project: str, report: str) -> Path:
    """Render and train the defaults into .bench/<project>, then run benchmarks/<script> on it;
    its report goes to .bench/<report> unless the session's arguments give `--out`. Returns the
    project's folder, for further measurements of the same project."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "test"))
    folder = ROOT / ".bench" / project
    render_trained(session, folder, train=True)
    out = [] if "--out" in session.posargs else ["--out", str(ROOT / ".bench" / report)]
    script_path = ROOT / "benchmarks" / script
    session.run("python", str(script_path), "--project", str(folder), *session.posargs, *out)
    return folder


def _answers(path: Path) -> dict[str, str]:
    """The plain `key: value` lines of a copier answers file (no YAML parser needed here)."""
    text = path.read_text(encoding="utf-8")
    return dict(re.findall(r"^(project_slug|package_name): (\S+)$", text, flags=re.MULTILINE))
