"""The model families a project can train: one module each, registered by its kind.

`FAMILIES` maps each kind (what `train.model_family` and `train --family` name) to the `Family`
its module declares as `FAMILY`; `lookup(kind)` refuses an unknown kind by naming the known
ones. Every module of this package except `SUPPORT_MODULES` is a family, found when the package
is imported: adding a family is adding its module and its entry in `tests/test_families.py`
(docs/architecture.md, "Adding a model family"). Configuration, the command line, training and
the compiler all read this registry; the template reads the modules' `kind`, `title` and
`offered` for its `model_family` question.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from types import MappingProxyType

from .base import Continuation, Family, FamilyError, Params

__all__ = [
    "BASELINE",
    "FAMILIES",
    "KINDS",
    "SUPPORT_MODULES",
    "Continuation",
    "Family",
    "FamilyError",
    "Params",
    "lookup",
]

# What every model must beat on the holdout; `train --family baseline` registers it on request.
BASELINE = "baseline"
# This package's modules that declare no family: the `Family` class, the compiled arithmetic.
SUPPORT_MODULES = ("base", "forms")


def _discover() -> dict[str, Family]:
    found: dict[str, Family] = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name in SUPPORT_MODULES or module.name.startswith("_"):
            continue
        declared = getattr(importlib.import_module(f"{__name__}.{module.name}"), "FAMILY", None)
        if not isinstance(declared, Family) or declared.kind != module.name:
            raise TypeError(
                f"families/{module.name}.py must declare FAMILY = Family(kind={module.name!r}, ...)"
            )
        found[declared.kind] = declared
    return found


FAMILIES: Mapping[str, Family] = MappingProxyType(_discover())
KINDS: tuple[str, ...] = tuple(FAMILIES)


def lookup(kind: str) -> Family:
    """The family registered as `kind`; FamilyError names the known kinds otherwise."""
    try:
        return FAMILIES[kind]
    except KeyError:
        raise FamilyError(
            f"unknown model family {kind!r}; the known families are {', '.join(KINDS)}"
        ) from None
