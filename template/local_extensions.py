"""Jinja filters that copier gets from jinja2-ansible-filters, for cookiecutter's prompts.

cookiecutter loads this module (named in cookiecutter.json's `_extensions`) from this folder, so
cookiecutter.json can derive the slug with the very expression copier.yml uses,
hooks/check_answers.py can evaluate copier.yml's validators unchanged, and the template's files
escape the answers with the same filters under both tools (`to_json`, `quote`).
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from jinja2 import Environment
from jinja2.ext import Extension


def regex_search(value: str, pattern: str) -> str | None:
    """The first match of `pattern` in `value`, or None (ansible's `regex_search`)."""
    match = re.search(pattern, value)
    return match.group(0) if match else None


def regex_replace(value: str, pattern: str = "", replacement: str = "") -> str:
    """Every match of `pattern` in `value` replaced (ansible's `regex_replace`)."""
    return re.sub(pattern, replacement, value)


def to_json(value: Any, **options: Any) -> str:  # noqa: ANN401 - json.dumps takes any
    """`value` as JSON (ansible's `to_json`): a JSON string is also a TOML basic string, a YAML
    double-quoted scalar and a Python string literal, once control characters are refused."""
    return json.dumps(value, **options)


def quote(value: str) -> str:
    """`value` quoted for a POSIX shell, unchanged when nothing needs quoting (ansible's)."""
    return shlex.quote(value)


class AnsibleFilters(Extension):
    """Registers `regex_search`, `regex_replace`, `to_json` and `quote`."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["regex_search"] = regex_search
        environment.filters["regex_replace"] = regex_replace
        environment.filters["to_json"] = to_json
        environment.filters["quote"] = quote
