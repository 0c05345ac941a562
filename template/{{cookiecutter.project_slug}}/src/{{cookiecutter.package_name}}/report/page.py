"""The loop's page: versions, the metric over time, drift and the gate's evidence, in one file.

Self-contained so that it can be mailed, archived by CI or opened from a zipped reports folder:
inline CSS, charts as PNG data URIs, no script and no address outside the page except relative
links to the reports it was built from. A stage that has not run yet gets its section all the
same, saying what is missing and which command produces it.
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from matplotlib.figure import Figure

from ..config import Project
from ..files import written_whole
from ..metrics import MIN_SLICE_ROWS
from ..redaction import redact
from ..store import CHAMPION, VersionRow, read_versions
from . import figures
from .artifacts import (
    Monitored,
    Record,
    Traffic,
    decision_records,
    gate_metric,
    metric_buckets,
    newest_monitor,
    read_traffic,
    version_metric,
)

PAGE_NAME = "loop.html"
RECENT_DECISIONS = 20  # rows of the decision table; the folder keeps every record

STYLE = """
body { margin: 0; background: #f6f6f4; color: #222;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
header, main { max-width: 64rem; margin: 0 auto; padding: 0 1.25rem; }
header { padding-top: 1.25rem; }
h1 { font-size: 1.45rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 0 0 .6rem; padding-bottom: .3rem;
  border-bottom: 1px solid #e4e4e0; }
h3 { font-size: 1rem; margin: 1rem 0 .4rem; }
nav a { margin-right: 1rem; }
a { color: #2f5d8a; }
section { background: #fff; border: 1px solid #e4e4e0; border-radius: 6px;
  padding: 1rem 1.25rem; margin: 1rem 0; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; margin: .5rem 0; }
th, td { text-align: left; vertical-align: top; padding: .3rem .5rem;
  border-bottom: 1px solid #eee; }
th { color: #555; font-weight: 600; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
img { display: block; max-width: 100%; height: auto; margin: .5rem 0; }
code { background: #f0f0ec; padding: 0 .25rem; border-radius: 3px; }
.lead { color: #555; margin: 0 0 .5rem; }
.summary { font-size: 1rem; margin: .5rem 0; }
.missing { background: #fbf6e9; border-left: 3px solid #d8b45a; padding: .5rem .75rem; }
.drift, .rejected, .error, .performance_drop, .FAIL { color: #a2412b; font-weight: 600; }
.ok, .promoted, .rolled_back, .pass { color: #3b7a4b; font-weight: 600; }
.keep_collecting, .insufficient_data { color: #8a6a1c; font-weight: 600; }
"""


class Html(str):
    """Markup that is already escaped, so the helpers below do not escape it again."""

    __slots__ = ()


def text(value: object) -> Html:
    return Html(html.escape(str(value)))


def join(*parts: str) -> Html:
    return Html("".join(part if isinstance(part, Html) else text(part) for part in parts))


def tag(name: str, *parts: str, **attributes: str) -> Html:
    """An element; `class_` stands for the reserved word."""
    shown = "".join(
        f' {key.rstrip("_")}="{html.escape(value, quote=True)}"'
        for key, value in attributes.items()
    )
    return Html(f"<{name}{shown}>{join(*parts)}</{name}>")


def missing(*parts: str) -> Html:
    return tag("p", *parts, class_="missing")


def command(name: str) -> Html:
    return tag("code", name)


def outcome(value: str) -> Html:
    """An outcome or status, coloured by what it means."""
    return tag("span", value.replace("_", " "), class_=value)


def table(headers: list[str], rows: list[list[str]], numeric: tuple[int, ...] = ()) -> Html:
    head = tag("tr", *(tag("th", h) for h in headers))
    body = [
        tag(
            "tr",
            *(
                tag("td", c, class_="number") if i in numeric else tag("td", c)
                for i, c in enumerate(row)
            ),
        )
        for row in rows
    ]
    return tag("table", tag("thead", head), tag("tbody", *body))


def image(figure: Figure, alt: str) -> Html:
    return Html(f'<img alt="{html.escape(alt, quote=True)}" src="{figures.data_uri(figure)}">')


def link(target: Path, page: Path, label: str) -> Html:
    """A link relative to the page, so the page and its reports move together."""
    relative = Path(os.path.relpath(target.resolve(), page.parent.resolve())).as_posix()
    return tag("a", label, href=quote(relative))


def number(value: Any, digits: int = 4) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"
    return "n/a" if value is None else str(value)


def significant(value: Any) -> str:
    """p-values and effects: three significant digits, as the gate's reasons print them."""
    if isinstance(value, int | float) and math.isfinite(value):
        return f"{value:.3g}"
    return "n/a"


def moment(value: Any) -> str:
    """An ISO instant from a tag or a record, to the minute in UTC."""
    if not value:
        return ""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class LoopPage:
    """The page written, and what it shows in one line (the command prints it)."""

    path: Path
    versions: int
    champion: str | None
    labelled_rows: int
    drift_status: str | None  # None: no monitor run yet
    last_decision: str | None  # "<outcome> (<kind>)", None: no decision yet

    @property
    def headline(self) -> str:
        champion = f" (champion v{self.champion})" if self.champion else ", no champion"
        return (
            f"{self.versions} version{'s' if self.versions != 1 else ''}{champion}, "
            f"{self.labelled_rows:,} labelled predictions, "
            f"monitor: {(self.drift_status or 'not run yet').replace('_', ' ')}, "
            f"last decision: {self.last_decision or 'none yet'}"
        )


def write_report(project: Project, out: Path | None = None) -> LoopPage:
    """Read what the loop left behind and write the page (whole: a reader never sees half).

    `out` defaults to `loop.html` in the reports folder, beside the reports it links to.
    """
    page = (out or project.reports_dir / PAGE_NAME).resolve()
    versions = read_versions(project)
    traffic = read_traffic(project)
    monitored = newest_monitor(project)
    records = decision_records(project)
    champion = next((v.version for v in versions if CHAMPION in v.aliases), None)
    last = records[0].body if records else None
    result = LoopPage(
        path=page,
        versions=len(versions),
        champion=champion,
        labelled_rows=len(traffic.labelled),
        drift_status=str(monitored.summary.get("status")) if monitored else None,
        last_decision=_decision(last) if last else None,
    )
    sections = [
        _versions(project, versions),
        _metric_over_time(project, versions, traffic),
        _drift(project, monitored, page),
        _gate(records, page),
        _decisions(records, page),
    ]
    page.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(page) as partial:
        partial.write_text(redact(_document(project, result, sections)), encoding="utf-8")
    return result


def _decision(record: dict[str, Any]) -> str:
    """A decision in a few words: its outcome, and the kind of decision it was."""
    said = str(record.get("outcome", "")).replace("_", " ")
    return f"{said} ({str(record.get('kind', '')).replace('_', ' ')})"


def _document(project: Project, result: LoopPage, sections: list[tuple[str, str, Html]]) -> str:
    tracking = project.config.tracking
    title = f"{tracking.experiment}: the loop of model {tracking.registered_model}"
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = tag(
        "header",
        tag("h1", title),
        tag(
            "p",
            f"Generated {generated} from the model registry, the prediction log, the newest "
            "monitor summary and the decision records.",
            class_="lead",
        ),
        tag("p", result.headline, class_="summary"),
        tag("nav", *(tag("a", heading, href=f"#{key}") for key, heading, _ in sections)),
    )
    body = [
        tag("section", tag("h2", heading), content, id=key) for key, heading, content in sections
    ]
    return (
        "<!doctype html>\n"
        + tag(
            "html",
            tag(
                "head",
                Html('<meta charset="utf-8">'),
                Html('<meta name="viewport" content="width=device-width, initial-scale=1">'),
                tag("title", title),
                tag("style", Html(STYLE)),
            ),
            tag("body", header, tag("main", *body)),
            lang="en",
        )
        + "\n"
    )


# --- sections: each returns (id, heading, content) ---------------------------------------------


def _versions(project: Project, versions: list[VersionRow]) -> tuple[str, str, Html]:
    name = project.config.gate_metric
    if not versions:
        return (
            "versions",
            "Versions",
            missing(
                "No registered versions yet: ",
                command("train"),
                " registers the first one, and the gate makes it the champion.",
            ),
        )
    rows = []
    for v in versions:
        reason = v.promotion_reason or ""
        if v.rolled_back_at:
            reason = f"{reason} Rolled back {moment(v.rolled_back_at)}.".strip()
        rows.append(
            [
                f"v{v.version}",
                ", ".join(v.aliases),
                v.family or "",
                moment(v.trained_at),
                number(v.holdout),
                moment(v.promoted_at),
                reason,
            ]
        )
    parts = [
        tag(
            "p",
            f"Every registered version, oldest first, with its {name} on the holdout it was "
            "trained with and, once the gate promoted it, when and why.",
            class_="lead",
        ),
        table(
            [
                "version",
                "aliases",
                "family",
                "trained at",
                f"holdout {name}",
                "promoted at",
                "promotion reason",
            ],
            rows,
            numeric=(4,),
        ),
    ]
    if not any(CHAMPION in v.aliases for v in versions):
        parts.append(
            missing("No champion yet: ", command("promote"), " runs the gate on the challenger.")
        )
    return "versions", "Versions", join(*parts)


def _metric_over_time(
    project: Project, versions: list[VersionRow], traffic: Traffic
) -> tuple[str, str, Html]:
    score = gate_metric(project)
    key, heading = "metric-over-time", f"{score.name} over time, per version"
    if traffic.problem:
        return key, heading, missing(traffic.problem)
    served = sum(traffic.served.values())
    if traffic.labelled.empty:
        waiting = f" {served:,} served predictions wait for their labels." if served else ""
        return (
            key,
            heading,
            missing(
                "No labelled traffic yet: the service (",
                command("serve"),
                ") logs every prediction it serves and ",
                command("POST /feedback"),
                " joins its label; this chart needs both.",
                waiting,
            ),
        )
    buckets = metric_buckets(project, traffic.labelled)
    holdouts = {v.version: v.holdout for v in versions}
    known = [v.version for v in versions]
    order = [*known, *sorted(set(buckets) - set(known))]  # a version the registry lost, last
    colours = {version: figures.version_colour(i) for i, version in enumerate(order)}
    charted = {version: buckets[version] for version in order if version in buckets}
    sizes = [point.rows for points in charted.values() for point in points]
    rows = []
    for version in order:
        labelled = int((traffic.labelled["model_version"] == version).sum())
        if not labelled and not traffic.served.get(version):
            continue
        points = len(buckets.get(version, []))
        rows.append(
            [
                f"v{version}",
                f"{traffic.served.get(version, 0):,}",
                f"{labelled:,}",
                number(version_metric(project, traffic.labelled, version)),
                number(holdouts.get(version)),
                str(points) if points else f"none: fewer than {MIN_SLICE_ROWS} labels",
            ]
        )
    parts = [
        tag(
            "p",
            f"Each point is the {score.name} of one run of consecutive labelled predictions of "
            f"a version ({min(sizes, default=0):,} to {max(sizes, default=0):,} labels each, "
            "plotted when the run's middle prediction was served): equal counts, so every point "
            "is as reliable as the next whatever the traffic's daily rhythm. The dashed line "
            f"is the version's {score.name} on its holdout at training.",
            class_="lead",
        ),
    ]
    if sizes:
        figure = figures.metric_over_time(
            charted, holdouts, colours, score.name, maximize=score.maximize
        )
        parts.append(image(figure, f"{score.name} over time for each model version"))
    parts.append(
        table(
            [
                "version",
                "served",
                "labelled",
                f"{score.name} on labelled traffic",
                f"{score.name} at training",
                "points",
            ],
            rows,
            numeric=(1, 2, 3, 4),
        )
    )
    return key, heading, join(*parts)


def _drift(project: Project, monitored: Monitored | None, page: Path) -> tuple[str, str, Html]:
    key, heading = "drift", "Drift per feature"
    if monitored is None:
        return (
            key,
            heading,
            missing(
                "No monitor report yet: ",
                command("monitor"),
                " compares the champion's live window with its reference data and writes one.",
            ),
        )
    summary = monitored.summary
    status = str(summary.get("status", "unknown"))
    files = [link(monitored.path, page, "summary (JSON)")]
    if monitored.report is not None:
        files.insert(0, link(monitored.report, page, "Evidently report"))
    parts = [
        tag(
            "p",
            f"Checked {moment(summary.get('checked_at'))} for champion "
            f"v{summary.get('champion_version')}: ",
            outcome(status),
            ". Window: ",
            str(summary.get("current", {}).get("source", "")),
            "; reference: ",
            str(summary.get("reference", {}).get("description", "")),
            ".",
        ),
        tag("p", "Read more: ", *_between(files, " · ")),
    ]
    drift = summary.get("drift")
    if drift is None:
        parts.append(missing("This run tested no drift: ", "; ".join(summary.get("reasons", []))))
        return key, heading, join(*parts)
    columns: dict[str, dict[str, Any]] = drift.get("columns", {})
    # The quality checks cover exactly the schema's features; any other column is the model's
    # prediction, tested for drift as well but not counted in the drifted share.
    features = set(summary.get("quality", {})) or set(columns)
    limit = summary.get("policy", {}).get("drift_share", project.config.monitor.drift_share)
    drifted = sorted(c for c in columns if c in features and columns[c].get("drifted"))
    counted = [c for c in columns if c in features]
    parts.append(
        tag(
            "p",
            f"{len(drifted)} of {len(counted)} feature columns drifted "
            f"({float(drift.get('drifted_share', 0.0)):.0%}); the monitor calls the data drifted "
            f"from a share of {float(limit):.0%} (",
            command("monitor.drift_share"),
            ").",
        )
    )

    def label(name: str) -> str:
        outside = {"prediction": "model output", "label": "the labels that arrived"}
        return name if name in features else f"{name} ({outside.get(name, 'not a feature')})"

    bars = [
        figures.DriftBar(
            label=label(name),
            score=float(entry["score"]),
            threshold=float(entry["threshold"]),
            drifted=bool(entry.get("drifted")),
            below_drifts=_below_drifts(entry),
        )
        for name, entry in columns.items()
        if _finite(entry.get("score")) and _finite(entry.get("threshold"))
    ]
    for below in (True, False):
        group = [bar for bar in bars if bar.below_drifts is below]
        if group:
            kind = "p-value" if below else "distance"
            parts.append(image(figures.drift_bars(group), f"drift {kind} per column"))
    parts.append(
        table(
            ["column", "test", "score", "threshold", "drifted"],
            [
                [
                    label(name),
                    str(entry.get("method", "")),
                    significant(entry.get("score")),
                    significant(entry.get("threshold")),
                    outcome("drift") if entry.get("drifted") else "no",
                ]
                for name, entry in columns.items()
            ],
            numeric=(2, 3),
        )
    )
    reasons = summary.get("reasons", [])
    parts.append(tag("h3", "The monitor's reasons"))
    parts.append(
        tag("ul", *(tag("li", r) for r in reasons))
        if reasons
        else tag("p", "None: all checks passed.")
    )
    return key, heading, join(*parts)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _below_drifts(entry: dict[str, Any]) -> bool:
    """Whether a score below the threshold means drift (a p-value) rather than above (a
    distance), read from the monitor's own verdict on the column; its test's name only when the
    verdict is missing, since not every p-value test says so in its name."""
    score, threshold = float(entry["score"]), float(entry["threshold"])
    drifted = entry.get("drifted")
    if drifted is None or score == threshold:
        return "p_value" in str(entry.get("method", ""))
    return bool(drifted) == (score < threshold)


def _evidence_rows(body: dict[str, Any]) -> str:
    """What the gate compared the models on: the holdout, and any labelled shadow rows."""
    shadow = int(body.get("data", {}).get("shadow_rows") or 0)
    return f"the holdout and {shadow:,} labelled shadow rows" if shadow else "the holdout"


def _gate(records: list[Record], page: Path) -> tuple[str, str, Html]:
    key, heading = "gate", "The gate's evidence"
    if not records:
        return (
            key,
            heading,
            missing(
                "No decision record yet: ",
                command("promote"),
                " (or ",
                command("retrain"),
                ") writes one to the promotion reports folder.",
            ),
        )
    evidence = next((record for record in records if record.has_evidence), None)
    if evidence is None:
        return (
            key,
            heading,
            missing(
                "No decision has compared two models yet: the first champion is promoted without a "
                "test (the records below say why each decision went as it did). The next ",
                command("retrain"),
                " or ",
                command("promote"),
                " with both a champion and a challenger will.",
            ),
        )
    body = evidence.body
    primary, test = body["primary"], body["test"]
    name = str(primary["metric"])
    dry = " (dry run: no alias moved)" if body.get("dry_run") else ""
    roles = {role: body.get(role, {}).get("version") for role in ("champion", "challenger")}
    scale = str(test.get("effect_scale", name))
    # The interval is on the test's scale: a t-test's is of the mean per-row loss, not the metric.
    on_scale = "" if scale == name else f" ({scale})"
    parts = [
        tag(
            "p",
            f"The newest gate decision that compared two models, {moment(body.get('decided_at'))}"
            f"{dry}: ",
            outcome(str(body.get("outcome"))),
            ". ",
            str(body.get("reason", "")),
        ),
        tag("p", "Record: ", *_between(_record_links(evidence, page), " · ")),
        table(
            ["", "champion", "challenger"],
            [
                ["version", f"v{roles['champion']}", f"v{roles['challenger']}"],
                [
                    f"{name} on {_evidence_rows(body)}",
                    number(primary["champion"]),
                    number(primary["challenger"]),
                ],
            ],
            numeric=(1, 2),
        ),
        table(
            [
                "improvement",
                "min_effect",
                "alpha",
                "test",
                "p-value",
                f"CI low{on_scale}",
                f"CI high{on_scale}",
                "n",
                "minimum detectable effect",
            ],
            [
                [
                    significant(primary.get("improvement")),
                    significant(primary.get("min_effect")),
                    significant(primary.get("alpha")),
                    str(test.get("name")),
                    significant(test.get("p_value")),
                    significant(test.get("ci_low")),
                    significant(test.get("ci_high")),
                    f"{int(test.get('n') or 0):,}",
                    f"{significant(test.get('minimum_detectable_effect'))} "
                    f"({test.get('effect_scale', name)})",
                ]
            ],
            numeric=(0, 1, 2, 4, 5, 6, 7),
        ),
    ]
    # min_effect is in the metric's units: drawn only on a chart of that scale.
    min_effect = primary.get("min_effect") if scale == name else None
    low, high = test.get("ci_low"), test.get("ci_high")
    if low is not None and high is not None:
        measured = primary.get("improvement")
        estimate = measured if scale == name and _finite(measured) else (low + high) / 2
        share = 1 - 2 * float(primary.get("alpha", 0.05))
        parts.append(
            tag(
                "p",
                f"The bar spans the test's {share:.0%} interval of the improvement (each end a "
                "one-sided bound): a promotion needs it clear of zero, and the measured "
                "improvement at least min_effect.",
                class_="lead",
            )
        )
        parts.append(
            image(
                figures.improvement_interval(low, high, estimate, scale, min_effect),
                "interval of the improvement against zero and min_effect",
            )
        )
    else:
        parts.append(tag("p", f"The {test.get('name')} test gives no interval.", class_="lead"))
    parts.append(
        _differences(test, min_effect, "interval" if scale == name else "interval of the mean")
    )
    if guardrails := body.get("guardrails"):
        parts.append(tag("h3", "Guardrails"))
        parts.append(
            table(
                ["guardrail", "champion", "challenger", "limit", "verdict"],
                [
                    [
                        str(g.get("name")),
                        significant(g.get("champion")),
                        significant(g.get("challenger")),
                        significant(g.get("limit")),
                        outcome("pass" if g.get("passed") else "FAIL"),
                    ]
                    for g in guardrails
                ],
                numeric=(1, 2, 3),
            )
        )
    return key, heading, join(*parts)


def _differences(test: dict[str, Any], min_effect: float | None, interval_label: str) -> Html:
    """The recorded histogram of what the test compared, row by row or resample by resample."""
    recorded = test.get("differences")
    if not recorded or not recorded.get("counts"):
        return tag(
            "p",
            "This record holds no summary of the paired differences (records written before "
            "the gate kept one do not).",
            class_="lead",
        )
    low, high = test.get("ci_low"), test.get("ci_high")
    interval = None if low is None or high is None else (float(low), float(high))
    figure = figures.differences(
        recorded["edges"], recorded["counts"], recorded["of"], interval, min_effect, interval_label
    )
    return join(
        tag("h3", "Paired differences"),
        tag(
            "p",
            f"{sum(recorded['counts']):,} values: {recorded['of']}. Right of zero, the challenger "
            "did better; the outer bars also count the few values beyond them.",
            class_="lead",
        ),
        image(figure, "histogram of the paired differences"),
    )


def _decisions(records: list[Record], page: Path) -> tuple[str, str, Html]:
    key, heading = "decisions", "Decision records"
    if not records:
        return (
            key,
            heading,
            missing(
                "No decision record yet: every ",
                command("promote"),
                ", ",
                command("retrain"),
                ", ",
                command("rollback"),
                " and ",
                command("ab-report"),
                " writes one.",
            ),
        )
    shown = records[:RECENT_DECISIONS]
    rows = [
        [
            moment(r.body.get("decided_at")),
            str(r.body.get("kind", "")).replace("_", " "),
            outcome(str(r.body.get("outcome", ""))),
            str(r.body.get("reason", "")),
            join(*_between(_record_links(r, page), " · ")),
        ]
        for r in shown
    ]
    older = len(records) - len(shown)
    parts = [
        tag("p", "Newest first; each links to its Markdown and JSON record.", class_="lead"),
        table(["decided at", "kind", "outcome", "reason", "record"], rows),
    ]
    if older:
        parts.append(tag("p", f"{older} older records are in the same folder.", class_="lead"))
    return key, heading, join(*parts)


def _record_links(record: Record, page: Path) -> list[Html]:
    found = [link(record.path, page, "JSON")]
    if record.markdown is not None:
        found.insert(0, link(record.markdown, page, "Markdown"))
    return found


def _between(parts: list[Html], separator: str) -> list[str]:
    joined: list[str] = []
    for i, part in enumerate(parts):
        joined += [separator, part] if i else [part]
    return joined
