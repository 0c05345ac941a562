"""cookiecutter's pre-generation hook: refuse the answers that copier.yml's validators refuse."""

import subprocess
import sys
from pathlib import Path

REPO = Path({{ cookiecutter._repo_dir | tojson }}).parent
ANSWERS = {{ cookiecutter | tojson | tojson }}

sys.exit(subprocess.call([sys.executable, str(REPO / "hooks" / "check_answers.py"), ANSWERS]))
