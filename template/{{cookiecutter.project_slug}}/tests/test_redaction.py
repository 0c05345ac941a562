"""One redaction for all text that leaves the process: what it masks and what it leaves."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.promote.record import write_record
from {{ cookiecutter.package_name }}.redaction import redact, redact_all, redact_logs

PLANTED = "hunter2-Xy"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            f"API request to http://admin:{PLANTED}@127.0.0.1:9/api/2.0/mlflow/x failed",
            "API request to http://admin:***@127.0.0.1:9/api/2.0/mlflow/x failed",
        ),
        (
            f"postgresql+psycopg://ml:{PLANTED}@db:5432/mlflow, sqlite:///mlflow.db",
            "postgresql+psycopg://ml:***@db:5432/mlflow, sqlite:///mlflow.db",
        ),
        (f"host=db password={PLANTED} user=ml", "host=db password=*** user=ml"),
        ('{"api_key": "' + PLANTED + '", "rows": 3}', '{"api_key": "***", "rows": 3}'),
        (f"SERVICE_API_KEY: {PLANTED}", "SERVICE_API_KEY: ***"),
        ("PGPASSWORD=" + repr(PLANTED), "PGPASSWORD='***'"),
        (f"?token={PLANTED}&page=2", "?token=***&page=2"),
    ],
)
def test_passwords_and_secret_named_values_are_masked(text: str, shown: str) -> None:
    assert redact(text) == shown
    assert redact(shown) == shown  # masking twice changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1:5000/api/2.0/mlflow/runs/get",
        "sqlite:///mlflow.db",
        "the gate kept the champion: p=0.31, tokens per row 12",
        "roc_auc 0.800 vs champion 0.424",
        "serve.require_api_key: Input should be a valid boolean",
        "api_key_env names the variable that holds the key",
    ],
)
def test_text_without_secrets_is_left_as_it_is(text: str) -> None:
    assert redact(text) == text


def test_nested_values_are_masked_and_their_shape_kept() -> None:
    record = {"reason": f"Mlflow: http://a:{PLANTED}@h/x", "n": 3, "seen": [f"token={PLANTED}"]}
    masked = {"reason": "Mlflow: http://a:***@h/x", "n": 3, "seen": ["token=***"]}
    assert redact_all(record) == masked


def test_log_records_are_masked_whoever_logs_them(caplog: pytest.LogCaptureFixture) -> None:
    redact_logs()
    redact_logs()  # idempotent
    caplog.set_level(logging.INFO)
    logging.getLogger("some.library").warning("cannot reach %s", f"http://u:{PLANTED}@h:1/")
    assert "cannot reach http://u:***@h:1/" in caplog.text
    assert PLANTED not in caplog.text


def test_a_decision_record_keeps_no_password(tmp_path: Path) -> None:
    reason = f"registry http://a:{PLANTED}@h:1 did not answer"
    record = {"kind": "promotion", "outcome": "error", "reason": reason, "model": "m"}
    record["decided_at"] = "2026-12-07T00:00:00+00:00"
    path = write_record(tmp_path, record)
    for written in (path, path.with_suffix(".md")):
        text = written.read_text(encoding="utf-8")
        assert PLANTED not in text
        assert "http://a:***@h:1" in text
