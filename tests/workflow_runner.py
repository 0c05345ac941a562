"""Run a generated project's GitHub Actions workflow here, as written: each job in its own fresh
`git clone`, its `run:` steps in order through bash, its `env` filled from a dict of secrets,
honouring `needs`, `if:` on job outputs, `$GITHUB_OUTPUT` and same-repository reusable workflows.

Steps that `uses:` an action are GitHub's plumbing (checkout is the clone; setup-python, cache and
uploads have no local effect) and are skipped, except `download-artifact`, which is refused: a job
that needs another job's files would not work from a fresh checkout. Any expression the runner does
not understand fails loudly instead of evaluating to something convenient.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from helpers import subprocess_env

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
NEEDS_OUTPUT = re.compile(r"needs\.([\w-]+)\.outputs\.([\w-]+)\s*==\s*'([^']*)'")
SKIPPED_ACTIONS = ("actions/checkout", "actions/setup-python", "actions/cache")


class WorkflowError(AssertionError):
    """A step failed, or the workflow asks for something a fresh checkout cannot give."""


@dataclass
class JobResult:
    name: str
    outputs: dict[str, str]
    commands: list[str]
    log: Path
    skipped: bool = False


@dataclass
class WorkflowRun:
    """What ran, job by job (reusable workflows' jobs under `caller/job`)."""

    jobs: dict[str, JobResult] = field(default_factory=dict)

    def ran(self, name: str) -> bool:
        return name in self.jobs and not self.jobs[name].skipped


def _read_outputs(path: Path) -> dict[str, str]:
    """`name=value` lines and `name<<DELIM` blocks, as GitHub reads `$GITHUB_OUTPUT`."""
    outputs: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    index = 0
    while index < len(lines):
        line = lines[index]
        if "<<" in line and "=" not in line.split("<<", 1)[0]:
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, index + 1)
            outputs[name] = "\n".join(lines[index + 1 : end])
            index = end + 1
            continue
        if "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
        index += 1
    return outputs


class Runner:
    def __init__(
        self,
        repository: Path,
        workspace: Path,
        *,
        secrets: Mapping[str, str],
        tools: list[Path],
        env: Mapping[str, str] | None = None,
        timeout: float = 1_800,
    ) -> None:
        """`tools`: folders put first on PATH (an interpreter with pip, as setup-python gives)."""
        self.repository, self.workspace = repository, workspace
        self.secrets = dict(secrets)
        self.tools, self.extra_env, self.timeout = tools, dict(env or {}), timeout

    # --- expressions ----------------------------------------------------------------------

    def _value(self, expression: str, context: Mapping[str, Any]) -> str:
        parts = expression.split(".")
        if parts[0] == "secrets" and len(parts) == 2:
            return str(context["secrets"].get(parts[1], ""))  # a missing secret is empty
        if parts[0] == "steps" and len(parts) == 4 and parts[2] == "outputs":
            return str(context["steps"].get(parts[1], {}).get(parts[3], ""))
        raise WorkflowError(f"expression not understood here: ${{{{ {expression} }}}}")

    def _substitute(self, text: str, context: Mapping[str, Any]) -> str:
        return EXPRESSION.sub(lambda m: self._value(m.group(1), context), text)

    def _condition(self, condition: str | None, needs: Mapping[str, JobResult]) -> bool:
        if condition is None or condition.strip() in {"success()", "${{ success() }}"}:
            return True
        match = NEEDS_OUTPUT.fullmatch(condition.strip())
        if match is None:
            raise WorkflowError(f"job condition not understood here: {condition}")
        job, output, expected = match.groups()
        if job not in needs:
            raise WorkflowError(f"condition names {job}, which is not in the job's `needs`")
        return needs[job].outputs.get(output, "") == expected

    # --- running --------------------------------------------------------------------------

    def _clone(self, label: str) -> Path:
        """A fresh clone in a new folder of the workspace (git clones into an empty folder)."""
        target = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=self.workspace))
        subprocess.run(
            ["git", "clone", "--quiet", str(self.repository), str(target)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        return target

    def _run_job(self, name: str, job: Mapping[str, Any], secrets: Mapping[str, str]) -> JobResult:
        checkout = self._clone(name.replace("/", "-"))
        log = checkout.with_suffix(".log")
        context: dict[str, Any] = {"secrets": secrets, "steps": {}}
        env = subprocess_env(**self.extra_env)
        env["PATH"] = os.pathsep.join([*map(str, self.tools), env.get("PATH", "")])
        env["CI"], env["GITHUB_ACTIONS"] = "true", "true"
        for key, value in (job.get("env") or {}).items():
            env[key] = self._substitute(str(value), context)
        commands = []
        for index, step in enumerate(job.get("steps") or []):
            if "uses" in step:
                action = str(step["uses"])
                if action.startswith("actions/download-artifact"):
                    raise WorkflowError(
                        f"job {name} downloads another job's files ({action}): "
                        "a fresh checkout must find everything through the backends"
                    )
                if not action.startswith((*SKIPPED_ACTIONS, "actions/upload-artifact")):
                    raise WorkflowError(f"job {name}: unknown action {action}")
                continue
            if step.get("if") not in (None, "always()", "success()"):
                raise WorkflowError(f"step condition not understood here: {step['if']}")
            command = self._substitute(str(step["run"]), context)
            outputs_file = checkout.with_suffix(f".step{index}.outputs")
            step_env = env | {"GITHUB_OUTPUT": str(outputs_file)}
            for key, value in (step.get("env") or {}).items():
                step_env[key] = self._substitute(str(value), context)
            commands.append(command)
            with log.open("a", encoding="utf-8") as sink:
                sink.write(f"\n$ {command}\n")
                sink.flush()
                done = subprocess.run(
                    ["bash", "-e", "-o", "pipefail", "-c", command],
                    cwd=checkout,
                    env=step_env,
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    timeout=self.timeout,
                    check=False,
                )
            if done.returncode != 0:
                tail = "\n".join(log.read_text(encoding="utf-8").splitlines()[-60:])
                raise WorkflowError(
                    f"job {name}, step `{command}` exited {done.returncode}:\n{tail}"
                )
            if "id" in step:
                context["steps"][step["id"]] = _read_outputs(outputs_file)
        outputs = {
            key: self._substitute(str(value), context)
            for key, value in (job.get("outputs") or {}).items()
        }
        return JobResult(name, outputs, commands, log)

    def run(
        self, workflow: Path, secrets: Mapping[str, str] | None = None, prefix: str = ""
    ) -> WorkflowRun:
        """Every job of `workflow` in `needs` order; a job whose condition fails is skipped, and
        so is every job that needs it (as on GitHub)."""
        secrets = self.secrets if secrets is None else secrets
        spec = yaml.safe_load(workflow.read_text(encoding="utf-8"))
        jobs: dict[str, Any] = spec["jobs"]
        result = WorkflowRun()
        done: dict[str, JobResult] = {}
        pending = list(jobs)
        while pending:
            ready = [name for name in pending if all(need in done for need in _needs(jobs[name]))]
            if not ready:
                raise WorkflowError(f"{workflow.name}: jobs wait on each other: {pending}")
            for name in ready:
                pending.remove(name)
                job = jobs[name]
                needs = {need: done[need] for need in _needs(job)}
                label = f"{prefix}{name}"
                if any(n.skipped for n in needs.values()) or not self._condition(
                    job.get("if"), needs
                ):
                    done[name] = JobResult(label, {}, [], Path(), skipped=True)
                elif "uses" in job:
                    done[name] = self._call(workflow, label, job, secrets, result)
                else:
                    done[name] = self._run_job(label, job, secrets)
                result.jobs[label] = done[name]
        return result

    def _call(
        self,
        caller: Path,
        label: str,
        job: Mapping[str, Any],
        secrets: Mapping[str, str],
        result: WorkflowRun,
    ) -> JobResult:
        """A same-repository reusable workflow, with the secrets the caller passes to it."""
        target = str(job["uses"])
        relative = re.sub(r"^(\$|\.)/", "", target)
        if relative == target:
            raise WorkflowError(f"only same-repository workflows run here, not {target}")
        called = caller.parents[2] / relative
        context = {"secrets": secrets, "steps": {}}
        passed = job.get("secrets") or {}
        forwarded = (
            dict(secrets)
            if passed == "inherit"
            else {key: self._substitute(str(value), context) for key, value in passed.items()}
        )
        inner = self.run(called, forwarded, prefix=f"{label}/")
        result.jobs.update(inner.jobs)
        return JobResult(label, {}, [], Path())


def _needs(job: Mapping[str, Any]) -> list[str]:
    needs = job.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)
