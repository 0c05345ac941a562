"""One redaction for every text that leaves the process: HTTP answers, log lines, the CLI's
messages, decision records and the report page.

Errors carry what they were given: a client library that cannot reach
`http://admin:<password>@mlflow:5000` names that URL, and a driver echoes `password=...` from its
connection string. So a password is masked where text leaves, not where it was first written:
`scheme://user:***@host`, and `***` for the value of any secret-named key (`password=`,
`"api_key": "..."`, `token: ...`).
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"
# `scheme://user:password@host/...`: the password part.
URL_PASSWORD = re.compile(r"(://[^/@:\s]*:)[^/@\s]*@")
# The words that make a name secret: here, and in the conventions' check of committed files.
CREDENTIAL_WORDS = r"password|passwd|api[_-]?key|apikey|secret|token"
_NAMED = rf"(?i:{CREDENTIAL_WORDS})"
# A secret-named key and its value, where text assigns one: `password=x` (connection strings,
# query strings), `"api_key": "x"` (JSON, reprs), `PGPASSWORD: x` (environment listings). Prose
# such as `serve.require_api_key: Input should be a valid boolean` is left alone.
SECRET_VALUE = re.compile(
    rf"""(?x)
    (   \b[\w.-]*{_NAMED}[\w-]*\s*=\s*["']?                    # key=value
    |   ["'][\w.-]*{_NAMED}[\w-]*["']\s*:\s*["']?                # "key": "value"
    |   \b[A-Z0-9_]*(?:{CREDENTIAL_WORDS.upper()})[A-Z0-9_]*\s*:\s*["']?  # KEY: value
    )
    (?!\*\*\*)[^\s"'&;,)}}\]]+                                   # the value
    """
)


def redact(text: str) -> str:
    """`text` with every URL password and secret-named value masked."""
    text = URL_PASSWORD.sub(rf"\1{MASK}@", text)
    return SECRET_VALUE.sub(rf"\1{MASK}", text)


def redact_all(value: Any) -> Any:
    """`redact` applied to every string inside lists, tuples and dicts (a record, a JSON body)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_all(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_all(item) for item in value)
    return value


_make_record = logging.getLogRecordFactory()


def _redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _make_record(*args, **kwargs)
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # arguments that do not fit: the handler reports it
        return record
    shown = redact(message)
    if shown != message:
        record.msg, record.args = shown, None
    return record


def redact_logs() -> None:
    """Mask secrets in every log record this process makes, whichever library logs it and
    whichever handler writes it (the record itself is redacted when it is created). Idempotent."""
    if logging.getLogRecordFactory() is not _redacted_record:
        logging.setLogRecordFactory(_redacted_record)
