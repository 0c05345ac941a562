"""The exit codes of every command, in one table: CI branches on them, so each means one thing.

Standard library only, so the noxfile can read the same table that the commands use.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # done, or the positive outcome: promoted, rolled back, no drift
    NEGATIVE = 1  # the documented negative outcome: rejected, drift, roll back, a convention broken
    ERROR = 2  # no decision: bad configuration or data, no model, any unexpected failure
    ATTENTION = 3  # the third documented outcome: a performance drop, or keep collecting


# Every outcome a command reports, and the code it exits with.
OUTCOMES: dict[str, ExitCode] = {
    "ok": ExitCode.OK,
    "insufficient_data": ExitCode.OK,
    "promoted": ExitCode.OK,
    "rolled_back": ExitCode.OK,
    "rejected": ExitCode.NEGATIVE,
    "drift": ExitCode.NEGATIVE,
    "error": ExitCode.ERROR,
    "performance_drop": ExitCode.ATTENTION,
    "keep_collecting": ExitCode.ATTENTION,
}


def exit_code(outcome: str) -> ExitCode:
    """The code for an outcome's name; an outcome missing from the table is an error, not 0."""
    return OUTCOMES.get(outcome, ExitCode.ERROR)
