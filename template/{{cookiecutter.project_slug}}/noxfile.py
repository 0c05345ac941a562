"""Every CI step is a session here, so anything CI does can be run the same way locally."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nox

sys.path.insert(0, str(Path(__file__).parent / "src"))
from {{ cookiecutter.package_name }}.exit_codes import ExitCode  # standard library only

# The outcomes a session treats as results, not failures (the codes are in exit_codes.py).
DECIDED = [ExitCode.OK, ExitCode.NEGATIVE]
# The gate's too: keep collecting (too few rows of evidence yet; the challenger waits).
GATED = [*DECIDED, ExitCode.ATTENTION]

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests", "conventions"]

PACKAGE = "{{ cookiecutter.package_name }}"
PYPROJECT = nox.project.load_toml(Path(__file__).parent / "pyproject.toml")
REPORTS = Path("reports")


def install(session: nox.Session, *groups: str, extras: str = "") -> None:
    """The project, editable (with `extras`, e.g. "spark"), plus the named dependency groups."""
    extra = [req for group in groups for req in nox.project.dependency_groups(PYPROJECT, group)]
    session.install("-e", f".[{extras}]" if extras else ".", *extra)


def github(name: str, text: str) -> None:
    """Append to a GitHub Actions file (step outputs, job summary) when running in Actions."""
    target = os.environ.get(name)
    if target:
        with Path(target).open("a", encoding="utf-8") as handle:
            handle.write(text.rstrip("\n") + "\n")


def newest(pattern: str) -> Path | None:
    return max((REPORTS / "promotion").glob(pattern), default=None)


@nox.session
def lint(session: nox.Session) -> None:
    """No conflict markers, then ruff lint and format check.

    Markers come first: a template update committed by CI can hold inline conflicts, and a
    conflict in a YAML or Markdown file would otherwise surface later, if at all."""
    if conflicts := conflicted(tracked_files()):
        session.error(f"unresolved conflict markers (a merge or template update) in {conflicts}")
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the tests and this file."""
    install(session, "lint")
    session.run("mypy", *session.posargs)


# One pytest-xdist worker per core, each with one native thread: scikit-learn's OpenMP and the
# BLAS threads on top of the workers oversubscribe the cores (the suite took 307 s instead of
# 208 s on 2 cores). A value already set wins.
ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@nox.session
def tests(session: nox.Session) -> None:
    """Unit tests and the end-to-end tests on fresh tracking stores, on every core (pytest-xdist;
    `-- -n 0` runs them in one process). `-- -m answers` runs only the tests whose outcome the
    template's answers can change (tests/answers.py)."""
    install(session, "test")
    threads = {name: os.environ.get(name, "1") for name in ONE_THREAD}
    session.run("pytest", "-n", "auto", *session.posargs, env=threads)


@nox.session
def spark(session: nox.Session) -> None:
    """The Spark engine's tests, with the spark extra (PySpark) installed; Spark needs Java 17+."""
    install(session, "test", extras="spark")
    session.run("pytest", "-m", "spark", *session.posargs)


@nox.session
def conventions(session: nox.Session) -> None:
    """The team's conventions: answers file, required docs, policy floor, workflows, file sizes."""
    install(session)
    session.run(PACKAGE, "conventions")


@nox.session
def pipeline(session: nox.Session) -> None:
    """Ingest, train and gate with the project's configuration, into the project's own store."""
    install(session)
    session.run(PACKAGE, "ingest", *session.posargs)
    session.run(PACKAGE, "train", *session.posargs)
    # The gate's verdict is an outcome, not a failure: promoted, rejected or keep collecting.
    session.run(PACKAGE, "promote", *session.posargs, success_codes=GATED)
    session.run(PACKAGE, "models", *session.posargs)


@nox.session
def backends(session: nox.Session) -> None:
    """Where runs, models, the prediction log and training data live. A job on a fresh checkout
    runs `-- --require tracking,log` first, so a missing secret stops it with its name."""
    install(session)
    session.run(PACKAGE, "backends", *session.posargs)


@nox.session
def promote(session: nox.Session) -> None:
    """The A/B gate alone; exits 0 promoted, 1 rejected, 3 keep collecting, 2 error, so CI can
    act on it."""
    install(session)
    session.run(PACKAGE, "promote", *session.posargs)


def results(session: nox.Session, *args: str, codes: Sequence[int]) -> dict[str, Any]:
    """The one JSON document a command prints on stdout with `--json`; its progress and messages
    (stderr) go straight to the log."""
    printed = session.run(
        PACKAGE, *args, "--json", silent=True, stderr=None, success_codes=list(codes)
    )
    document: dict[str, Any] = json.loads(str(printed))
    return document


@nox.session
def monitor(session: nox.Session) -> None:
    """Drift and performance check. Drift is a finding, not a failure: see reports/retrain.json."""
    install(session)
    codes = [*DECIDED, ExitCode.ATTENTION]
    summary = results(session, "monitor", *session.posargs, codes=codes)
    session.log(f"monitor: {summary['status']}; retrain: {summary['retrain']}")
    github("GITHUB_OUTPUT", f"retrain={str(summary['retrain']).lower()}")


@nox.session
def retrain(session: nox.Session) -> None:
    """Ingest, train, gate. `-- --dry-run`: the gate moves no alias (the new version is still
    registered as challenger). A rejection, or keep collecting, is an outcome, not a failure."""
    install(session)
    decision = results(session, "retrain", *session.posargs, codes=GATED)
    github("GITHUB_OUTPUT", f"decision={decision['outcome']}")
    summary = Path(decision["record_path"]).with_suffix(".md")  # the record's Markdown twin
    github("GITHUB_STEP_SUMMARY", summary.read_text(encoding="utf-8"))


# The loop session's world: the project's own data, then two weeks later, then a world that drifted.
LOOP = REPORTS / "loop"
LOOP_POLL_SECONDS = 2.0  # the service notices a promotion this fast, to keep the story short
NEWER_WORLD = {
    "start": "2025-07-01",
    "days": 60,
    "seed": 21,
    "covariate_shift": 1.0,
    "concept_shift": 1.0,
}


class Steps:
    """One line per step, with its wall time: what happened, and the figures behind it."""

    def __init__(self, session: nox.Session) -> None:
        self.session, self.total = session, 0.0

    @contextmanager
    def step(self, name: str) -> Iterator[Callable[[str], None]]:
        said: list[str] = []
        started = time.monotonic()
        yield said.append
        seconds = time.monotonic() - started
        self.total += seconds
        self.session.log(f"[{seconds:5.1f} s] {name}: {' '.join(said)}")


def latest_manifest() -> dict[str, Any]:
    snapshots = Path("data/snapshots")
    latest = (snapshots / "LATEST").read_text(encoding="utf-8").strip()
    manifest: dict[str, Any] = json.loads((snapshots / latest / "manifest.json").read_text())
    return manifest


def gate_line(decision: dict[str, Any]) -> str:
    """The gate's verdict with its evidence: both models' metric, the test, its interval."""
    primary, test = decision.get("primary"), decision.get("test")
    head = f"{decision['outcome']} v{decision['challenger']['version']}"
    if not (primary and test):
        return f"{head}: {decision.get('reason', '')}"
    return (
        f"{head}: {primary['metric']} {primary['challenger']:.3f} vs champion "
        f"{primary['champion']:.3f} on the newest holdout, {test['name']} "
        f"p={test['p_value']:.2g}, interval of the gain [{test['ci_low']:+.3f}, "
        f"{test['ci_high']:+.3f}] against a minimum effect of {primary['min_effect']:g}"
    )


def newest_record(kind: str) -> dict[str, Any]:
    found = newest(f"*-{kind}.json")
    if found is None:
        raise RuntimeError(f"no {kind} decision record under {REPORTS / 'promotion'}")
    record: dict[str, Any] = json.loads(found.read_text(encoding="utf-8"))
    return record


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def served_version(url: str) -> str | None:
    try:
        with urllib.request.urlopen(f"{url}/metadata", timeout=5) as answer:  # noqa: S310
            body = json.loads(answer.read())
    except OSError:
        return None
    version = body["variants"].get("champion", {}).get("version")
    return str(version) if version else None


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up after {seconds:.0f} s waiting for {what}")
        time.sleep(0.2)


# Run in the session's venv (nox itself has no YAML reader): the project's configuration with a
# quick registry poll, and the same for a newer, drifted world, which retraining ingests.
LOOP_CONFIGS = """
import json, sys, yaml
config = yaml.safe_load(open("configs/project.yaml", encoding="utf-8"))
if config["data"]["source"]["kind"] != "demo":
    sys.exit("the loop drifts the built-in demo data: data.source.kind must be demo")
config["serve"]["registry_poll_seconds"] = float(sys.argv[3])
yaml.safe_dump(config, open(sys.argv[1], "w", encoding="utf-8"), sort_keys=False)
config["data"]["source"].update(json.loads(sys.argv[4]))
yaml.safe_dump(config, open(sys.argv[2], "w", encoding="utf-8"), sort_keys=False)
"""


@nox.session
def loop(session: nox.Session) -> None:
    """The whole continual-learning loop on the built-in demo data, in this project's own
    commands: train a champion, serve it, send traffic whose labels arrive later, let the world
    drift, monitor, retrain, watch the running service switch to the new champion, and write
    reports/loop.html. Only the demo source can drift on demand, so it needs that source."""
    install(session)
    LOOP.mkdir(parents=True, exist_ok=True)
    today, newer = LOOP / "today.yaml", LOOP / "newer.yaml"
    world = [str(today), str(newer), str(LOOP_POLL_SECONDS), json.dumps(NEWER_WORLD)]
    session.run("python", "-c", LOOP_CONFIGS, *world, silent=True, log=False)
    steps = Steps(session)

    def cli(*args: str, codes: Sequence[int] = (0,)) -> str:
        return str(session.run(PACKAGE, *args, silent=True, success_codes=list(codes)) or "")

    def rows(name: str, config: Path, *knobs: str) -> Path:
        out = LOOP / f"{name}.parquet"
        cli("demo-data", "-c", str(config), "--out", str(out), "--rows", "3000", *knobs)
        return out

    def replay(data: Path, count: int, url: str) -> str:
        """Send the newest `count` rows of `data`, then their labels; what the command said."""
        said = cli("replay", "-c", str(today), str(data), "--url", url, "--rows", str(count))
        return said.strip().splitlines()[-1].split(": ", 1)[-1]

    with steps.step("ingest") as say:
        cli("ingest", "-c", str(today))
        parts = latest_manifest()["parts"]
        split = "/".join(str(parts[p]["rows"]) for p in ("train", "validation", "holdout"))
        say(f"{sum(p['rows'] for p in parts.values())} valid rows, split {split} by time")
    with steps.step("train") as say:
        cli("train", "-c", str(today))
        first = newest_record("promotion")["challenger"]
        metric = next(key for key in first if key.startswith("holdout_"))
        name = metric.removeprefix("holdout_")
        say(f"v{first['version']} is the first champion: {name} {float(first[metric]):.3f}")

    url = f"http://127.0.0.1:{free_port()}"
    with (LOOP / "service.log").open("w", encoding="utf-8") as service_log:
        command = [PACKAGE, "serve", "-c", str(today), "--port", url.rsplit(":", 1)[1]]
        service = subprocess.Popen(
            [str(Path(session.bin) / command[0]), *command[1:]],
            stdout=service_log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        with steps.step("serve") as say:
            wait_for(lambda: served_version(url) is not None, 120, "the service to be ready")
            say(f"{url} serves v{served_version(url)}, polling the registry every 2 s")
        with steps.step("traffic") as say:
            say(replay(rows("today", today, "--seed", "8", "--start", "2025-07-01"), 200, url))
        with steps.step("drift") as say:
            shift = [f"--{key.replace('_', '-')}" for key in ("covariate_shift", "concept_shift")]
            knobs = [arg for key in shift for arg in (key, "1.0")]
            drifted = rows("drifted", newer, "--seed", "9", "--start", "2025-07-15", *knobs)
            say(f"the world drifts: {replay(drifted, 600, url)}")
        with steps.step("monitor") as say:
            cli("monitor", "-c", str(today), codes=[*DECIDED, ExitCode.ATTENTION])
            flag = json.loads((REPORTS / "retrain.json").read_text(encoding="utf-8"))
            summary = json.loads(Path(flag["summary"]).read_text(encoding="utf-8"))
            share = summary.get("drift", {}).get("drifted_share", float("nan"))
            say(f"{flag['status']}, drifted feature share {share:.2f}: retrain {flag['retrain']}")
        if not flag["retrain"]:
            session.error("monitoring did not ask for retraining: the loop stops here")
        with steps.step("retrain") as say:
            cli("retrain", "-c", str(newer), codes=DECIDED)
            decision = newest_record("promotion")
            say(gate_line(decision))
        if decision["outcome"] != "promoted":
            session.error("the gate kept the champion: the loop stops here")
        with steps.step("swap") as say:
            new = str(decision["challenger"]["version"])
            wait_for(lambda: served_version(url) == new, 10 * LOOP_POLL_SECONDS, "the swap")
            say(f"the running service answers with v{new} now, without a restart")
        with steps.step("after") as say:
            say(replay(drifted, 200, url))
    finally:
        with steps.step("stop") as say:
            service.send_signal(signal.SIGINT)
            say(f"the service stopped (exit code {service.wait(timeout=60)})")
    with steps.step("report") as say:
        cli("report", "-c", str(today))
        say(f"{REPORTS / 'loop.html'}: the loop on one page")
    session.log(f"the loop closed in {steps.total:.0f} s")


@nox.session
def serve(session: nox.Session) -> None:
    """Run the service locally: `nox -s serve -- --port 8000`."""
    install(session)
    session.run(PACKAGE, "serve", *session.posargs)


# The extra each `batch-predict --engine` needs; an engine not named here needs none.
ENGINE_EXTRAS = {"spark": "spark"}


def batch_engine(args: Sequence[str]) -> str:
    """The `--engine` that `batch-predict` will read from `args` (pandas when none)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--engine", default="pandas")
    return str(parser.parse_known_args(args)[0].engine)


@nox.session(name="batch-predict")
def batch_predict(session: nox.Session) -> None:
    """Score a table with the champion, with the extra its engine needs installed in this
    session's own venv (no other session's reinstall takes it away):
    `nox -s batch-predict -- customers/ scored/ --engine spark` (Java 17+), or
    `-- customers.csv scored.parquet` for pandas, which needs nothing more."""
    install(session, extras=ENGINE_EXTRAS.get(batch_engine(session.posargs), ""))
    session.run(PACKAGE, "batch-predict", *session.posargs)


@nox.session(name="demo-data")
def demo_data(session: nox.Session) -> None:
    """Write the demo rows and schema as files: `nox -s demo-data -- --out data/raw/events.csv`."""
    install(session)
    session.run(PACKAGE, "demo-data", *session.posargs)


# Template updates. A project follows either the template's release tags (it was rendered or last
# updated at a tag, so `_commit` in the answers file is that tag) or a branch (`_commit` is a
# commit: the template had no tag there, or the team updates with `--vcs-ref`). Copier compares
# PEP 440 versions, and every untagged commit is 0.0.0.postN or <tag>.postN, so a project that
# follows a branch is compared by commit instead: the recorded one against the branch's tip.
# TEMPLATE_VCS_REF (a branch name, or HEAD for the default branch) makes a project follow a branch.
ANSWERS = Path(".copier-answers.yml")
DESCRIBED = re.compile(r"-\d+-g(?P<hash>[0-9a-f]{4,40})$")  # `git describe`: <tag>-<n>-g<hash>
CONFLICT_MARKER = re.compile(r"^(<<<<<<<|>>>>>>>) ", re.MULTILINE)
GIT = shutil.which("git") or "git"


def recorded(key: str) -> str:
    """A top-level value of the answers file (copier writes plain `key: value` lines)."""
    for line in ANSWERS.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.partition(":")
        if sep and name == key:
            return value.strip().strip("'\"")
    raise SystemExit(f"{ANSWERS} has no {key}: the project cannot be compared with its template")


def remote_refs(source: str) -> dict[str, str]:
    """{ref: commit} of the template repository (`git ls-remote`: read-only, no clone).

    `_src_path` is recorded as given to copier: its `gh:`/`gl:` shortcuts and `git+` prefix are
    expanded as copier expands them, since git does not know them."""
    for short, host in (("gh:", "https://github.com/"), ("gl:", "https://gitlab.com/")):
        if source.startswith(short):
            source = host + source.removeprefix(short)
    source = source.removeprefix("git+")
    listed = subprocess.run(
        [GIT, "ls-remote", source], capture_output=True, text=True, check=True
    ).stdout
    return {ref: sha for sha, _, ref in (line.partition("\t") for line in listed.splitlines())}


@dataclass(frozen=True)
class Comparison:
    """What `template-check` and `template-update` compared, and whether the project is behind."""

    mode: str  # "tags" or "commits"
    ref: str  # the template ref updated to: "" for the newest tag, else a branch or HEAD
    current: str
    latest: str
    behind: bool

    def describe(self) -> str:
        followed = "release tags" if self.mode == "tags" else f"branch {self.ref}"
        return f"compared {self.mode} ({followed}): project {self.current}, template {self.latest}"


def compare(session: nox.Session) -> Comparison:
    """Tags when the project records a release tag of the template, else commits of a branch."""
    commit = recorded("_commit")
    refs = remote_refs(recorded("_src_path"))
    ref = os.environ.get("TEMPLATE_VCS_REF", "")
    if not ref and f"refs/tags/{commit}" in refs:
        status = session.run("copier", "check-update", "--output-format", "json", silent=True)
        data: dict[str, Any] = json.loads(str(status))
        current, latest = str(data["current_version"]), str(data["latest_version"])
        return Comparison("tags", "", current, latest, bool(data["update_available"]))
    ref = ref or "HEAD"
    tip = refs.get(ref) or refs.get(f"refs/heads/{ref}") or refs.get(f"refs/tags/{ref}")
    if tip is None:
        session.error(f"the template has no ref {ref!r}")
    described = DESCRIBED.search(commit)
    # A tag (a project that switches from tags to a branch) is the commit it points at.
    tagged = refs.get(f"refs/tags/{commit}" + "^{}") or refs.get(f"refs/tags/{commit}")
    mine = described["hash"] if described else (tagged or commit)
    return Comparison("commits", ref, commit, tip[:12], not tip.startswith(mine))


def conflicted(paths: list[str]) -> list[str]:
    """The text files among `paths` that hold a conflict marker line (git's or copier's)."""
    found = []
    for name in paths:
        path = Path(name)
        raw = path.read_bytes() if path.is_file() else b""
        if b"\0" not in raw and CONFLICT_MARKER.search(raw.decode("utf-8", errors="replace")):
            found.append(name)
    return found


def tracked_files() -> list[str]:
    """The files git would commit (tracked and new, ignored ones excluded); none outside git."""
    listed = subprocess.run(
        [GIT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        check=False,
    )
    return [name for name in listed.stdout.split("\0") if name] if listed.returncode == 0 else []


@nox.session(name="template-check")
def template_check(session: nox.Session) -> None:
    """Fails when the template has a newer version (tags) or commit (branch) than this project."""
    session.install("copier>=9.4")
    comparison = compare(session)
    session.log(comparison.describe())
    if comparison.behind:
        session.error(f"the template is ahead of this project; {comparison.describe()}")


@nox.session(name="template-update")
def template_update(session: nox.Session) -> None:
    """Apply the newest template version (or branch commit); in GitHub Actions, commit it on the
    `template-update` branch for `template-publish` to push."""
    session.install("copier>=9.4")
    comparison = compare(session)
    session.log(comparison.describe())
    if not comparison.behind:
        session.log("the project is on the newest template version")
        return
    vcs_ref = ["--vcs-ref", comparison.ref] if comparison.ref else []
    session.run("copier", "update", "--defaults", "--trust", "--conflict", "inline", *vcs_ref)
    conflicts = conflicted(tracked_files())
    for name in conflicts:
        session.warn(f"conflict to resolve by hand: {name}")
    if not os.environ.get("GITHUB_ACTIONS"):
        session.log("review `git diff`, resolve any conflict markers, then commit")
        return
    message = [f"Update from the template to {recorded('_commit')}", "", comparison.describe()]
    if conflicts:
        message += ["", "Conflicts to resolve (nox -s lint fails until they are):"]
        message += [f"- {name}" for name in conflicts]
    git = [
        "git",
        "-c",
        "user.name=template-update",
        "-c",
        "user.email=template-update@users.noreply.github.com",
    ]
    session.run(*git, "switch", "-C", "template-update", external=True)
    session.run(*git, "add", "--all", external=True)  # copier update may add new files
    session.run(*git, "commit", "--quiet", "-m", "\n".join(message), external=True)
    github("GITHUB_OUTPUT", "updated=true")
    github("GITHUB_STEP_SUMMARY", "\n".join(message))


@nox.session(name="template-publish")
def template_publish(session: nox.Session) -> None:
    """Push the `template-update` branch and open its pull request (GitHub Actions only)."""
    token, repository = os.environ["GH_TOKEN"], os.environ["GITHUB_REPOSITORY"]
    remote = f"https://x-access-token:{token}@github.com/{repository}.git"
    session.run("git", "push", "--force", remote, "template-update", external=True, silent=True)
    session.run(
        "gh",
        "pr",
        "create",
        "--fill",
        "--head",
        "template-update",
        external=True,
        success_codes=[0, 1],
    )
