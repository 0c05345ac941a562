"""Decision records: one JSON and one Markdown file per decision, every number in them.

A record is written for every outcome, so `reports/promotion/` is the audit trail of who
replaced whom and why; CI reads the JSON, people read the Markdown.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from .. import exit_codes
from ..config import Project
from ..files import written_whole
from ..redaction import redact_all
from ..store import Run, Store


class Outcome(StrEnum):
    PROMOTED = "promoted"
    REJECTED = "rejected"
    ERROR = "error"
    KEEP_COLLECTING = "keep_collecting"
    ROLLED_BACK = "rolled_back"

    @property
    def exit_code(self) -> exit_codes.ExitCode:
        """So CI can act on a decision without parsing anything."""
        return exit_codes.exit_code(self.value)


def _clean(value: Any) -> Any:
    """JSON has no NaN: write null instead, so every consumer can parse the record."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _markdown(record: dict[str, Any]) -> str:
    lines = [
        f"# {record['kind'].replace('_', ' ').title()}: {record['outcome']}",
        "",
        f"**{record['reason']}**",
        "",
        f"- model: `{record['model']}`",
        f"- decided at: {record['decided_at']}",
    ]
    if record.get("dry_run"):
        lines.append("- dry run: the gate's verdict only, no alias was moved")
    for role in ("champion", "challenger"):
        if entry := record.get(role):
            lines.append(f"- {role}: version {entry.get('version')}")
    if data := record.get("data"):
        lines += ["", "## Data", ""]
        lines += [f"- {key.replace('_', ' ')}: {_fmt(value)}" for key, value in data.items()]
    if primary := record.get("primary"):
        lines += ["", "## Primary metric", "", "| | value |", "|---|---|"]
        lines += [f"| {key} | {_fmt(value)} |" for key, value in primary.items()]
    if test := record.get("test"):
        lines += ["", "## Statistical test", "", "| | value |", "|---|---|"]
        shown = {key: value for key, value in test.items() if key not in {"detail", "differences"}}
        lines += [f"| {key} | {_fmt(value)} |" for key, value in shown.items()]
        lines += [f"| {key} | {_fmt(value)} |" for key, value in test.get("detail", {}).items()]
        if (differences := test.get("differences")) and differences["counts"]:
            lines.append(
                f"| differences | {differences['of']}: {sum(differences['counts'])} values in "
                f"{len(differences['counts'])} bins from {_fmt(differences['edges'][0])} to "
                f"{_fmt(differences['edges'][-1])} (the counts are in the JSON record) |"
            )
    if guardrails := record.get("guardrails"):
        lines += [
            "",
            "## Guardrails",
            "",
            "| guardrail | champion | challenger | limit | verdict |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {g['name']} | {_fmt(g['champion'])} | {_fmt(g['challenger'])} | "
            f"{_fmt(g['limit'])} | {'pass' if g['passed'] else 'FAIL'} |"
            for g in guardrails
        ]
    if variants := record.get("variants"):
        lines += [
            "",
            "## Variants",
            "",
            "| variant | version | samples | metric |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {name} | {v.get('version')} | {v.get('samples')} | {_fmt(v.get('metric'))} |"
            for name, v in variants.items()
        ]
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    """A value as a person reads it: 6 significant digits and never "-0"; a range as "a to b";
    a mapping as "key: value" pairs."""
    if isinstance(value, float):
        text = f"{value:.6g}" if math.isfinite(value) else "n/a"
        return "0" if text == "-0" else text
    if isinstance(value, list | tuple):
        return " to ".join(_fmt(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_fmt(v)}" for key, v in value.items())
    return "n/a" if value is None else str(value)


def write_record(directory: Path, record: dict[str, Any]) -> Path:
    """Write `<stamp>-<kind>.md`, then `.json`: a JSON record always has its Markdown.

    Returns the JSON path.
    """
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = directory / f"{stamp}-{record['kind']}.json"
    clean = redact_all(_clean(record))  # a reason can quote an error, and the error a URL
    # Each written whole: CI never reads half a record, however a run ends.
    with written_whole(path.with_suffix(".md")) as partial:
        partial.write_text(_markdown(clean), encoding="utf-8")
    with written_whole(path) as partial:
        partial.write_text(json.dumps(clean, indent=2, sort_keys=False), encoding="utf-8")
    return path


def new_record(project: Project, kind: str, **fields: Any) -> dict[str, Any]:
    """The header every decision record starts with: what kind, which model, when."""
    return {
        "kind": kind,
        "model": project.config.tracking.registered_model,
        "decided_at": datetime.now(UTC).isoformat(),
        **fields,
    }


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str
    record_path: Path
    record: dict[str, Any]


def conclude(project: Project, run: Run, record: dict[str, Any]) -> Decision:
    """Write the record to reports/ and to the decision's MLflow run."""
    path = write_record(project.promotion_reports_dir, record)
    run.log_artifact(path, "decision")
    run.log_artifact(path.with_suffix(".md"), "decision")
    run.set_tags({"stage": record["kind"], "outcome": str(record["outcome"])})
    figures: dict[str, float] = {}
    if primary := record.get("primary"):
        figures |= {
            f"{role}_{primary['metric']}": primary[role] for role in ("champion", "challenger")
        }
    if test := record.get("test"):
        figures["p_value"] = test["p_value"]
    run.log_metrics(figures)
    return Decision(
        outcome=Outcome(record["outcome"]), reason=record["reason"], record_path=path, record=record
    )


def record_decision(project: Project, kind: str, outcome: Outcome, reason: str) -> Decision:
    """A decision made outside the gate (a retrain stopped early, say), recorded like the gate's."""
    record = new_record(project, kind, outcome=outcome, reason=reason)
    with Store.open(project).run(kind) as run:
        return conclude(project, run, record)
