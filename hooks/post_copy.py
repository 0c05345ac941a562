"""First-copy task, shared by copier (`_tasks`, copy only) and cookiecutter (post_gen_project).

Puts a freshly rendered project under git with one commit of the rendered tree: `copier update`
needs a clean git repository to compute the team's changes against, and pre-commit needs one to
run at all. Running it again on an update would commit the team's work in progress under a
"rendered from the template" message, so copier runs it only on `copier copy`.

Run with the project folder as the working directory. Standard library only: it runs with
copier's or cookiecutter's Python, not the project's.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )


def identity(author_name: str, author_email: str) -> list[str]:
    """The user's git identity if one is configured, else the project's author answers."""
    configured = git("config", "user.email").stdout.strip()
    if configured:
        return []
    return ["-c", f"user.name={author_name}", "-c", f"user.email={author_email}"]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: post_copy.py AUTHOR_NAME AUTHOR_EMAIL", file=sys.stderr)
        return 2
    if shutil.which("git") is None:
        print("git is not installed: the project is not under version control yet.")
        return 0
    if git("rev-parse", "--is-inside-work-tree").returncode == 0:
        # Rendered inside an existing repository (a monorepo): its owners decide what to commit.
        return 0
    message = f"Render {Path.cwd().name} from the template"
    steps = {
        "init": ["init", "--quiet", "--initial-branch=main"],
        "add": ["add", "--all"],
        "commit": [
            *identity(*argv),
            *("-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", "-m", message),
        ],
    }
    for name, args in steps.items():
        result = git(*args)
        if result.returncode != 0:
            # Not fatal: the rendered files are all there, only the first commit is missing.
            print(f"git {name} failed, commit the project yourself:\n{result.stderr}")
            return 0
    print(f"Initialized a git repository in {Path.cwd()} with the rendered files committed.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
