"""The failures the project expects and explains: each command prints the message in one line
and exits with `ExitCode.ERROR`, without a traceback. Anything else is a bug or an outage."""

from __future__ import annotations


class ProjectError(Exception):
    """A failure whose message tells a person what to fix: bad configuration, data or state."""
