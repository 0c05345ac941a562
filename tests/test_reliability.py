"""benchmarks/reliability.py on a freshly trained default project, with short phases: the
generated service survives fuzzing, load, a SIGKILL, a registry outage and hostile input, and
says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO_ROOT, nox_command, render, run_logged, subprocess_env

pytestmark = pytest.mark.slow
TIMEOUT = 15 * 60
SCRIPT = REPO_ROOT / "benchmarks" / "reliability.py"
# benchmarks/hostile.py: one probe per finding of the trust review that a running service shows.
HOSTILE_PROBES = {
    "a_storage_fault_keeps_the_service_up",
    "credentials_never_leave_the_process",
    "metrics_cannot_be_forged_or_grown",
    "non_finite_numbers_are_422s",
    "lone_surrogates_are_422s",
    "relabels_are_counted",
    "api_docs_need_the_key",
    "results_on_stdout_and_json",
    "repeated_column_names_are_refused",
    "a_10_mb_cell_is_no_category",
    "slow_clients_are_cut_off",
    "connections_are_bounded",
    "a_hanging_backend_holds_up_neither_health_nor_ready",
}


def test_the_service_keeps_its_promises_under_faults(tmp_path: Path) -> None:
    project = render(tmp_path / "demo-ml-service", {})
    log = tmp_path / "run.log"
    run_logged(nox_command("-s", "pipeline"), cwd=project, log=log, timeout=TIMEOUT)

    summary_file = tmp_path / "reliability.json"
    args = ["--project", str(project), "--out", str(summary_file), "--duration", "5"]
    with log.open("a", encoding="utf-8") as sink:
        done = subprocess.run(
            [sys.executable, str(SCRIPT), *args, "--kill-seconds", "6", "--fuzz-examples", "25"],
            cwd=tmp_path,
            env=subprocess_env(),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            timeout=TIMEOUT,
            check=False,
        )
    tail = "\n".join(log.read_text(encoding="utf-8").splitlines()[-60:])
    assert done.returncode != 2, f"the measurement could not run:\n{tail}"
    summary = json.loads(summary_file.read_text(encoding="utf-8"))

    fuzz, load, crash = summary["fuzz"], summary["load"], summary["crash"]
    assert fuzz["server_errors"] == 0, tail
    assert fuzz["schema_violations"] == 0, tail
    assert fuzz["operations_tested"] == fuzz["operations_total"] == 7
    assert load["requests"] > 0
    assert load["errors"] == 0
    assert load["missing_from_log"] == 0
    assert set(crash["integrity_check"].values()) == {"ok"}
    assert crash["lost"] <= crash["answered_in_window"]
    assert crash["lost_outside_window"] == 0
    assert crash["answered_after_restart"] > 0
    probes = {probe["name"]: probe for probe in summary["hostile_input"]}
    assert set(probes) >= HOSTILE_PROBES, "the hostile-input stage ran every probe"
    failed = {name: probe["measured"] for name, probe in probes.items() if not probe["passed"]}
    assert failed == {}, tail
    assert summary["checks"] == dict.fromkeys(summary["checks"], True), tail
    assert done.returncode == 0, tail
