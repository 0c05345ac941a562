"""cookiecutter's post-generation hook: the same first-copy task that copier runs."""

import subprocess
import sys
from pathlib import Path

REPO = Path({{ cookiecutter._repo_dir | tojson }}).parent
AUTHOR = [{{ cookiecutter.author_name | tojson }}, {{ cookiecutter.author_email | tojson }}]

sys.exit(subprocess.call([sys.executable, str(REPO / "hooks" / "post_copy.py"), *AUTHOR]))
