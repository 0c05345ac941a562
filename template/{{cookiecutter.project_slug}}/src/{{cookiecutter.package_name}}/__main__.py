"""`python -m {{ cookiecutter.package_name }}` runs the command line."""

from .cli import app

app(prog_name="{{ cookiecutter.package_name }}")
