"""Migration shared by copier's `_migrations`: rename configuration keys in the team's files.

    python rename_config_keys.py serve.reload_seconds=serve.registry_poll_seconds [...]

Every YAML file under `configs/` (the shipped `project.yaml` and any the team added, such as a
`staging.yaml` passed with `--config`) gets each `section.old` key renamed to `section.new` in
place (a key deeper down too: `train.leakage.old=train.leakage.new`): a text edit of that one
line, so values, comments and layout stay the team's. Keys inside an update's conflict block
are renamed too, so keeping the team's side of the conflict keeps a valid key; such files are
named, since the conflict itself is the team's to resolve. Renaming is idempotent: a file that
already uses the new name is not touched.

Run with the project folder as the working directory. Standard library only.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CONFLICT = re.compile(r"^(<<<<<<<|>>>>>>>) ", re.MULTILINE)
MARKER = re.compile(r"^(<<<<<<<|=======|>>>>>>>|\|\|\|\|\|\|\|)( |$)")
KEY = re.compile(r"^[A-Za-z_][\w-]*$")


def parse_renames(args: list[str]) -> dict[tuple[str, ...], str]:
    """`section.old=section.new` pairs (`section.sub.old=section.sub.new` deeper down), as
    {(section, ..., old): new}: only the last part is renamed."""
    renames: dict[tuple[str, ...], str] = {}
    for arg in args:
        old, sep, new = arg.partition("=")
        *old_parents, old_key = old.split(".")
        *new_parents, new_key = new.split(".")
        if not (sep and old_parents and old_key and new_key) or old_parents != new_parents:
            raise ValueError(f"{arg!r}: expected section.old_key=section.new_key")
        renames[(*old_parents, old_key)] = new_key
    return renames


def rename_keys(text: str, renames: dict[tuple[str, ...], str]) -> str:
    """The text with each renamed key replaced where its path of parent keys is the one named:
    a key of the same name in another section, or deeper down, is left alone."""
    lines = text.splitlines(keepends=True)
    parents: list[tuple[int, str]] = []  # (indent, key) of the mappings the line is inside
    for index, line in enumerate(lines):
        stripped = line.lstrip(" ")
        if not stripped.strip() or stripped.startswith("#") or MARKER.match(line):
            continue
        indent = len(line) - len(stripped)
        while parents and parents[-1][0] >= indent:
            parents.pop()
        key, colon, rest = stripped.partition(":")
        key = key.rstrip()
        if not colon or not KEY.match(key):
            continue  # a list item, a continued value: no key of a mapping
        path = (*(name for _, name in parents), key)
        if new_key := renames.get(path):
            lines[index] = f"{' ' * indent}{new_key}:{rest}"
        parents.append((indent, key))
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
