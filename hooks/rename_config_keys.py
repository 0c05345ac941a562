"""Migration shared by copier's `_migrations`: rename configuration keys in the team's files.

    python rename_config_keys.py serve.reload_seconds=serve.registry_poll_seconds [...]

Every YAML file under `configs/` (the shipped `project.yaml` and any the team added, such as a
`staging.yaml` passed with `--config`) gets each `section.old` key renamed to `section.new` in
place: a text edit of that one line, so values, comments and layout stay the team's. Keys inside
an update's conflict block are renamed too, so keeping the team's side of the conflict keeps a
valid key; such files are named, since the conflict itself is the team's to resolve. Renaming is
idempotent: a file that already uses the new name is not touched.

Run with the project folder as the working directory. Standard library only.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CONFLICT = re.compile(r"^(<<<<<<<|>>>>>>>) ", re.MULTILINE)
MARKER = re.compile(r"^(<<<<<<<|=======|>>>>>>>|\|\|\|\|\|\|\|)( |$)")
SECTION = re.compile(r"^([A-Za-z_][\w-]*):")


def parse_renames(args: list[str]) -> dict[tuple[str, str], str]:
    """`section.old=section.new` pairs, as {(section, old): new}."""
    renames: dict[tuple[str, str], str] = {}
    for arg in args:
        old, sep, new = arg.partition("=")
        old_section, _, old_key = old.partition(".")
        new_section, _, new_key = new.partition(".")
        if not (sep and old_key and new_key) or old_section != new_section:
            raise ValueError(f"{arg!r}: expected section.old_key=section.new_key")
        renames[(old_section, old_key)] = new_key
    return renames


def rename_keys(text: str, renames: dict[tuple[str, str], str]) -> str:
    """The text with each renamed key replaced where it is a direct child of its section."""
    lines = text.splitlines(keepends=True)
    section = None
    child_indent = None
    for index, line in enumerate(lines):
        if match := SECTION.match(line):
            section, child_indent = match.group(1), None
            continue
        stripped = line.lstrip(" ")
        if (
            section is None
            or not stripped.strip()
            or stripped.startswith("#")
            or MARKER.match(line)
        ):
            continue
        indent = len(line) - len(stripped)
        child_indent = indent if child_indent is None else child_indent
        if indent != child_indent:
            continue  # deeper: a key of a nested mapping, not of the section itself
        key, colon, rest = stripped.partition(":")
        new_key = renames.get((section, key.strip()))
        if colon and new_key:
            lines[index] = f"{' ' * indent}{new_key}:{rest}"
    return "".join(lines)


def main(argv: list[str]) -> int:
    try:
        renames = parse_renames(argv)
    except ValueError as error:
        print(f"rename_config_keys: {error}", file=sys.stderr)
        return 2
    for path in sorted(Path("configs").glob("**/*.y*ml")):
        text = path.read_text(encoding="utf-8")
        migrated = rename_keys(text, renames)
        if migrated != text:
            path.write_text(migrated, encoding="utf-8")
            print(f"{path}: renamed {', '.join(argv)}")
        if CONFLICT.search(migrated):
            print(f"{path}: has conflict markers from the update; resolve them by hand.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
