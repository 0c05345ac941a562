"""Evaluate copier.yml's validators on a set of answers: cookiecutter's pre-generation check.

    python check_answers.py '{"project_name": "...", "package_name": "...", ...}'

copier runs its validators itself; cookiecutter has none, so its pre_gen_project hook calls this
script, and a bad answer is refused with copier's own message. copier.yml stays the one place
where the rules live; its validators import their shared checks and generated lists from the
template's root, as copier lets them. Exits 1 and prints one line per refused answer.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "template"))

from local_extensions import AnsibleFilters  # noqa: E402 - lives next to cookiecutter.json


def problems(answers: dict[str, Any], copier_yml: Path = ROOT / "copier.yml") -> list[str]:
    """The message of every validator that refuses its answer, in question order."""
    spec = yaml.safe_load(copier_yml.read_text(encoding="utf-8"))
    env = Environment(
        loader=FileSystemLoader(copier_yml.parent),
        undefined=StrictUndefined,
        extensions=[AnsibleFilters],
        autoescape=False,  # noqa: S701 - renders plain text, never HTML
    )
    found = []
    for name, question in spec.items():
        if name.startswith("_") or not isinstance(question, dict) or "validator" not in question:
            continue
        message = env.from_string(question["validator"]).render(answers).strip()
        if message:
            found.append(f"{name}: {' '.join(message.split())}")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: check_answers.py ANSWERS_JSON", file=sys.stderr)
        return 2
    answers: dict[str, Any] = json.loads(argv[0])
    refused = problems(answers)
    for line in refused:
        print(line, file=sys.stderr)
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
