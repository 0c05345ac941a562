"""Which tests depend on the template's answers, declared and enforced.

The template renders this project for several sets of answers (task, model family, data source)
and runs the whole suite in one of them; in the others it runs only `pytest -m answers`, the tests
whose outcome the answers can change. A test depends on the answers when it reads a file that they
shape (`ANSWER_FILES`), at import time, in a fixture or in its body. Such a test must carry
`@pytest.mark.answers` (or its module `pytestmark = pytest.mark.answers`): this plugin watches
every file the tests open (a `sys.audit` hook on "open", and the file names a subprocess is given)
and, given `--check-answers` (the template's tests give it), fails a test that reads one without
the marker, naming the file, so that no answer-dependent test can be left out of the other
projects by mistake. Without the option it does nothing: the team's own tests need no marker.

A test whose projects come from `write_project` (which sets their data source) reads the answers
only through the task and the model family: `@pytest.mark.task_family_only` says so, and an
option set with the same task (another data source, another family: tests/test_families.py
runs every family in every project) leaves it out. That marker is declared, not watched: give
it only to tests whose every project is made that way.

Loaded by tests/conftest.py (`pytest_plugins`); standard library and pytest only, so that the
template's own tests can read `ANSWER_FILES` without installing the project.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Project files whose content depends on an answer (the template checks that this covers every
# file that differs between its renders). Paths relative to the project root, with "/".
ANSWER_FILES = frozenset(
    {
        ".copier-answers.yml",
        "README.md",
        "configs/governance.yaml",
        "configs/project.yaml",
        "docs/model-card.md",
        "pyproject.toml",  # the model family's extra
    }
)
MARKER = "answers"
CHECK = "--check-answers"

_checking = False  # --check-answers was given
_recording: list[set[str]] = []  # one set per open scope (a module's import, a fixture, a test)
_by_module: dict[str, set[str]] = {}  # module path -> answer files read when it was imported
_by_fixture: dict[str, set[str]] = {}  # fixture name -> answer files its set-up read
_READS = pytest.StashKey[set[str]]()


def _answer_file(path: Any, cwd: str | None = None) -> str | None:
    """The ANSWER_FILES name of `path` when it is one (relative paths from `cwd`), else None."""
    if isinstance(path, int) or not isinstance(path, str | bytes | os.PathLike):
        return None
    full = Path(os.path.normpath(Path(cwd or Path.cwd()) / os.fsdecode(path)))
    if not full.is_relative_to(ROOT):
        return None
    name = full.relative_to(ROOT).as_posix()
    return name if name in ANSWER_FILES else None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _recording:
        return
    if event == "open":
        names = [_answer_file(args[0])]
    elif event == "subprocess.Popen":
        command, cwd = args[1], args[2]
        parts = [command] if isinstance(command, str | bytes | os.PathLike) else command or []
        cwd_text = os.fsdecode(cwd) if cwd is not None else None
        names = [_answer_file(part, cwd_text) for part in parts]
    else:
        return
    for name in filter(None, names):
        for reads in _recording:
            reads.add(name)


class _Recording:
    """Answer files read between enter and exit (nested scopes all see a read)."""

    def __enter__(self) -> set[str]:
        self.reads: set[str] = set()
        _recording.append(self.reads)
        return self.reads

    def __exit__(self, *_: object) -> None:
        closed = _recording.pop()  # scopes nest, so the innermost one closes first
        assert closed is self.reads


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        CHECK,
        action="store_true",
        help=f"fail a test that reads a file the template's answers shape unless it is marked "
        f"{MARKER} (tests/answers.py)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """With --check-answers, install the audit hook (once per process: it cannot be removed).
    The marker itself is declared in pyproject.toml."""
    global _checking  # one switch for the hooks of this process
    _checking = bool(config.getoption(CHECK))
    if _checking and not getattr(sys, "_answer_audit_installed", False):
        sys.addaudithook(_audit)
        sys._answer_audit_installed = True  # type: ignore[attr-defined]


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    if not (_checking and isinstance(collector, pytest.Module)):
        return (yield)
    with _Recording() as reads:
        report = yield
    _by_module[str(collector.path)] = reads
    return report


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any]) -> Generator[None, Any, Any]:
    if not _checking:
        return (yield)
    with _Recording() as reads:
        result = yield
    if reads:
        _by_fixture.setdefault(fixturedef.argname, set()).update(reads)
    return result


def _reads_of(item: pytest.Item) -> Generator[None, None, None]:
    """Wrap one phase of `item` (set-up, body): what it reads is added to the item's reads."""
    if not _checking:
        return (yield)
    with _Recording() as reads:
        yield
    item.stash.setdefault(_READS, set()).update(reads)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _reads_of(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _reads_of(item))


def answer_files_read(item: pytest.Item) -> set[str]:
    """Every answer file `item` depends on: read by its module's import, by any fixture it uses
    (also one set up earlier, for another test), in its own set-up or body."""
    recorded: set[str] = item.stash.get(_READS, set())
    reads = recorded | _by_module.get(str(item.path), set())
    for name in getattr(item, "fixturenames", ()):
        reads |= _by_fixture.get(name, set())
    return reads


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if not _checking or call.when != "call" or item.get_closest_marker(MARKER) is not None:
        return report
    if read := sorted(answer_files_read(item)):
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} reads {', '.join(read)}, which the template's answers shape, but is "
            f"not marked @pytest.mark.{MARKER}: mark it (or its module) so that every rendered "
            "option set runs it"
        )
    return report
