"""What a model family declares: one frozen `Family` per module of this package.

A family is what `train.model_family` and `train --family` name: the estimator it builds for
each task, how a fitted one continues on new rows, which types loading a saved one may trust,
the packages it needs, and how `scoring` compiles it. Nothing here imports scikit-learn or
numpy: the registry is read whenever a configuration is, and `--help` must stay fast, so a
family imports its library inside the functions it declares.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from ..errors import ProjectError

if TYPE_CHECKING:
    from ..config import Task
    from .forms import Form, Link

Params: TypeAlias = Mapping[str, Any]
# (train.params, train.seed) -> an unfitted estimator; train.params override the family's defaults.
Build: TypeAlias = Callable[[Params, int], Any]
# (the champion's fitted estimator, train.params) -> how its next fit goes on from where it
# stopped, or None when that estimator cannot (the fit then starts from scratch).
WarmStart: TypeAlias = "Callable[[Any, Params], Continuation | None]"
# (a fitted estimator, the width of the features it reads) -> its raw-score arithmetic and link,
# or None when the estimator is not one this family builds; CompileError names what cannot compile.
Compile: TypeAlias = "Callable[[Any, int], tuple[Form, Link] | None]"


@dataclass(frozen=True)
class Continuation:
    """How a fitted estimator goes on fitting: the parameters to set on it (scikit-learn's
    `warm_start` and a larger `max_iter`) and the arguments its `fit` takes (LightGBM's
    `init_model`, XGBoost's `xgb_model`: the booster to add rounds to)."""

    params: Mapping[str, Any] = field(default_factory=dict)
    fit_args: Mapping[str, Any] = field(default_factory=dict)


class FamilyError(ProjectError, ValueError):
    """An unknown family, a task the family has no estimator for, or a parameter its estimator
    does not take."""


@dataclass(frozen=True)
class Family:
    """One model family, registered under `kind`, the name of the module that declares it."""

    kind: str
    title: str  # how the template's `model_family` question and the docs name the family
    estimators: Mapping[Task, Build]  # one per task the family can train
    # A choice of the template's `model_family` question; False: `train.model_family` only.
    offered: bool = True
    # Per task whose estimator can go on fitting: `train.warm_start` continues the champion.
    warm_start: Mapping[Task, WarmStart] = field(default_factory=dict)
    # Modules (`lightgbm`) or types (`collections.OrderedDict`) a saved model may hold, beyond
    # scikit-learn's and numpy's (the features and the calibration): skops loads no other type.
    trusted: tuple[str, ...] = ()
    # pip requirements beyond the base ones `train` logs with every model.
    requirements: tuple[str, ...] = ()
    # How `scoring/compiler.py` reads a fitted estimator; None: scikit-learn scores every version
    # of the family, and the version's `compiled_refused` tag says so.
    compile: Compile | None = None

    def estimator(self, task: Task, params: Params, seed: int) -> Any:
        """An unfitted estimator for `task`; a parameter it does not take is refused by name.

        The check reads the estimator's own parameters, not the constructor's failure: LightGBM's
        and XGBoost's estimators take any keyword and would only warn about a misspelt one."""
        build = self.estimators.get(task)
        if build is None:
            raise FamilyError(
                f"model family {self.kind!r} has no estimator for {task}; "
                f"it trains {', '.join(self.estimators)}"
            )
        try:
            plain = build({}, seed)
        except ModuleNotFoundError as missing:
            raise FamilyError(
                f"model family {self.kind!r} needs the {missing.name} package, which is not "
                f"installed: pip install -e '.[{self.kind}]' (pyproject.toml's {self.kind} extra)"
            ) from None
        known = set(plain.get_params())
        if unknown := sorted(set(params) - known):
            raise FamilyError(
                f"train.params: the {self.kind} family's {type(plain).__name__} takes no "
                f"{', '.join(map(repr, unknown))}; it takes {', '.join(sorted(known))}"
            )
        return build(params, seed)

    def trusts(self, type_name: str) -> bool:
        """Whether a saved model of this family may hold `type_name` (a dotted type path)."""
        return any(type_name == name or type_name.startswith(f"{name}.") for name in self.trusted)

    def continuing(self, task: Task, fitted: Any, params: Params) -> Continuation | None:
        """How `fitted` (a champion's estimator) continues on new rows, or None when this family
        starts every fit of `task` from scratch."""
        warm_start = self.warm_start.get(task)
        return None if warm_start is None else warm_start(fitted, params)
