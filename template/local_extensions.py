"""Jinja filters that copier gets from jinja2-ansible-filters, for cookiecutter's prompts.

cookiecutter loads this module (named in cookiecutter.json's `_extensions`) from this folder, so
cookiecutter.json can derive the slug with the very expression copier.yml uses, and
hooks/check_answers.py can evaluate copier.yml's validators unchanged.
"""

from __future__ import annotations

import re

from jinja2 import Environment
from jinja2.ext import Extension


def regex_search(value: str, pattern: str) -> str | None:
    """The first match of `pattern` in `value`, or None (ansible's `regex_search`)."""
    match = re.search(pattern, value)
    return match.group(0) if match else None


def regex_replace(value: str, pattern: str = "", replacement: str = "") -> str:
    """Every match of `pattern` in `value` replaced (ansible's `regex_replace`)."""
    return re.sub(pattern, replacement, value)


class RegexFilters(Extension):
    """Registers `regex_search` and `regex_replace`."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["regex_search"] = regex_search
        environment.filters["regex_replace"] = regex_replace
