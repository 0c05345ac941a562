"""Prometheus metrics in the text exposition format, held per app instance (no global registry).

Written by hand rather than with prometheus_client: a dozen series, updated only on the event
loop thread, need neither its locks nor its process-wide registry. What that library would
otherwise guarantee is kept here: every label value is escaped (`_escape`), and every label comes
from a bounded set (request counts are labelled by the matched route's template, never by the
requested path: see `app.route_label`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _escape(value: object) -> str:
    """A label value as the exposition format quotes it: backslash, double quote and line feed
    escaped, so that no value can end its label or its line."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample(name: str, value: float, **labels: object) -> str:
    rendered = ",".join(f'{key}="{_escape(label)}"' for key, label in labels.items())
    return f"{name}{'{' + rendered + '}' if rendered else ''} {value}"


def _header(name: str, kind: str, text: str) -> list[str]:
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]


@dataclass
class LogCounters:
    """The prediction-log buffer's counts, which it updates on the event loop thread."""

    pending: int = 0  # queued, or in the batch being written
    written: int = 0
    dropped: int = 0  # beyond serve.log_buffer_rows while the log was down, or refused by it
    write_failures: int = 0  # flushes whose write failed; their rows stayed queued
    relabels: int = 0  # labels stored for a prediction that had one (label_history keeps both)


class ServiceMetrics:
    """Request counts, errors and a latency histogram per variant; what requests held that the
    schema does not (ignored fields, unseen categories); and the prediction log's buffer: rows
    pending, written and dropped, and failed writes.

    Updated only from the event loop thread, so plain counters need no lock.
    """

    def __init__(self, categorical: Iterable[str] = ()) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * len(LATENCY_BUCKETS))
        self.latency_sum: dict[str, float] = defaultdict(float)
        self.latency_count: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()
        self.prediction_log = LogCounters()
        self.rows_with_ignored_fields = 0
        # One series per categorical feature from the start, so a rate over it is never missing.
        self.unseen_categories: Counter[str] = Counter(dict.fromkeys(categorical, 0))

    def observe_request(self, endpoint: str, status: int) -> None:
        self.requests[(endpoint, status)] += 1

    def observe_prediction(self, variant: str, seconds: float, rows: int = 1) -> None:
        self.rows[variant] += rows
        self.latency_sum[variant] += seconds
        self.latency_count[variant] += 1
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.buckets[variant][i] += 1

    def render(self, loaded: Iterable[tuple[str, str, str]] = ()) -> str:
        """The text page; `loaded` holds (variant, version, scoring) of each model in memory."""
        errors: Counter[str] = Counter()
        for (endpoint, status), count in self.requests.items():
            if status >= 400:
                errors[endpoint] += count
        lines = _header("service_model_info", "gauge", "Models in memory and how they score.")
        lines += [
            _sample("service_model_info", 1, variant=variant, version=version, scoring=scoring)
            for variant, version, scoring in sorted(loaded)
        ]
        lines += _header("service_requests_total", "counter", "HTTP requests by endpoint, status.")
        lines += [
            _sample("service_requests_total", count, endpoint=endpoint, status=status)
            for (endpoint, status), count in sorted(self.requests.items())
        ]
        lines += _header("service_errors_total", "counter", "4xx and 5xx responses by endpoint.")
        lines += [
            _sample("service_errors_total", count, endpoint=endpoint)
            for endpoint, count in sorted(errors.items())
        ]
        lines += _header("service_predictions_total", "counter", "Rows scored, by variant.")
        lines += [
            _sample("service_predictions_total", count, variant=variant)
            for variant, count in sorted(self.rows.items())
        ]
        name = "service_model_latency_seconds"
        lines += _header(name, "histogram", "Model time per request, by variant.")
        for variant in sorted(self.latency_count):
            for bound, count in zip(LATENCY_BUCKETS, self.buckets[variant], strict=True):
                lines.append(_sample(f"{name}_bucket", count, variant=variant, le=bound))
            total = self.latency_count[variant]
            lines += [
                _sample(f"{name}_bucket", total, variant=variant, le="+Inf"),
                _sample(f"{name}_sum", self.latency_sum[variant], variant=variant),
                _sample(f"{name}_count", total, variant=variant),
            ]
        name = "service_unseen_categories_total"
        lines += _header(
            name,
            "counter",
            "Categories the schema does not list, scored as unknowns (serve.unseen_categories: "
            "score), by column.",
        )
        lines += [
            _sample(name, count, column=column)
            for column, count in sorted(self.unseen_categories.items())
        ]
        counts = self.prediction_log
        for name, kind, text, value in (
            (
                "service_rows_with_ignored_fields_total",
                "counter",
                "Rows that held fields the schema does not declare, which were ignored "
                "(serve.extra_columns: ignore).",
                self.rows_with_ignored_fields,
            ),
            (
                "service_log_rows_pending",
                "gauge",
                "Prediction-log rows not written yet.",
                counts.pending,
            ),
            (
                "service_log_rows_written_total",
                "counter",
                "Rows written to the prediction log.",
                counts.written,
            ),
            (
                "service_log_rows_dropped_total",
                "counter",
                "Prediction-log rows dropped: the oldest beyond serve.log_buffer_rows while the "
                "log was unreachable, and rows the database refused.",
                counts.dropped,
            ),
            (
                "service_log_write_failures_total",
                "counter",
                "Prediction-log writes that failed; their rows were kept for the next flush.",
                counts.write_failures,
            ),
            (
                "service_feedback_relabels_total",
                "counter",
                "Labels stored for a prediction that already had one: the latest label counts, "
                "every label stays in the log's label_history.",
                counts.relabels,
            ),
        ):
            lines += _header(name, kind, text)
            lines.append(_sample(name, value))
        return "\n".join(lines) + "\n"
