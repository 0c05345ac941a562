"""Request and response models, derived from the data schema.

Ranges, categories and nullability come from the same `DataSchema` that validates training data,
so a request the model could not have been trained on is refused with a 422 naming the field.
Two things a real client sends are taken by default, as ingest and batch-predict take them:
fields the schema leaves out (`serve.extra_columns`), ignored; and a category the schema does not
list (`serve.unseen_categories`), scored as the fitted pipeline scores an unknown. The service
counts both (`ServiceState.admit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import GenericAlias
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, create_model

from ..config import ServeConfig
from ..data import MAX_TEXT_CHARS, ColumnSpec, DataSchema
from ..metrics import DECISION_THRESHOLD


def _a_number(value: Any) -> Any:
    """The schema says number: pydantic's lax mode would also take `true` or `"5"` as one."""
    if isinstance(value, bool | str):
        raise ValueError("expected a number")  # a ValueError becomes a 422, a TypeError a 500
    return value


STRICT_NUMBER = BeforeValidator(_a_number)


def _number(column: ColumnSpec) -> Any:
    # The validator goes after the bounds: before them, the API schema would lose its
    # minimum and maximum (pydantic could no longer express them in JSON Schema).
    if column.integer:  # lax int: 1.0 is taken as 1, 1.5 is refused
        return Annotated[int, Field(ge=column.min, le=column.max), STRICT_NUMBER]
    return Annotated[float, Field(ge=column.min, le=column.max, allow_inf_nan=False), STRICT_NUMBER]


def _category_text(value: Any) -> Any:
    """A category is text, as ingest compares it: a number a client sends for one is its text,
    as a file's whole numbers are (7 and 7.0 are the category "7"); a boolean is no category."""
    if isinstance(value, bool):
        raise ValueError("expected a category's text, not a boolean")
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    return str(value) if isinstance(value, float) else value


CATEGORY_TEXT = BeforeValidator(_category_text)


def _category(column: ColumnSpec, unseen: str) -> Any:
    """`refuse`: one of the schema's categories (the 422 lists them). `score`: any text, with the
    known categories in the API schema's examples; `admit` counts the ones it does not know."""
    known = tuple(column.categories or ())
    if unseen == "refuse":
        return Annotated[Literal[known], CATEGORY_TEXT]
    return Annotated[
        str,
        CATEGORY_TEXT,
        Field(min_length=1, max_length=MAX_TEXT_CHARS, examples=list(known)),
        UNICODE_TEXT,
    ]


def _field(column: ColumnSpec, unseen: str) -> tuple[Any, Any]:
    kind: Any = _category(column, unseen) if column.role == "categorical" else _number(column)
    if column.nullable:
        return kind | None, Field(default=None, description=column.description)
    return kind, Field(description=column.description)


def _id_text(value: Any) -> Any:
    """Ids are text, but files often hold whole numbers: 42 is the id "42"."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _unicode_text(value: str) -> str:
    """JSON can spell text that is not Unicode (a lone surrogate, "\\ud800"): no database can
    store it, so a prediction with it would be answered and then lost from the log."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode text (a lone surrogate)") from None
    return value


UNICODE_TEXT = AfterValidator(_unicode_text)
ENTITY_ID = Annotated[
    str, BeforeValidator(_id_text), Field(min_length=1, max_length=256), UNICODE_TEXT
]


def request_row_model(schema: DataSchema, settings: ServeConfig) -> type[BaseModel]:
    """One row to score: the entity id (when the data has one), every feature, and an optional
    event time, which must be a real instant (ISO 8601). Other fields are kept aside in
    `model_extra` (`serve.extra_columns: ignore`, so they can be counted) or refused."""
    fields: dict[str, Any] = {
        schema.timestamp_column: (datetime | None, Field(default=None)),
    }
    if schema.id_column is not None:
        fields[schema.id_column] = (ENTITY_ID, Field())
    fields |= {
        name: _field(schema.column(name), settings.unseen_categories)
        for name in schema.feature_columns
    }
    extra: Literal["allow", "forbid"] = "allow" if settings.extra_columns == "ignore" else "forbid"
    return create_model(
        "PredictionRequest",
        __config__=ConfigDict(extra=extra, frozen=True),
        **fields,
    )


def batch_request_model(row: type[BaseModel], max_rows: int) -> type[BaseModel]:
    # list[row], spelt so that a type checker accepts a class only built at run time.
    rows: Any = GenericAlias(list, row)
    return create_model(
        "BatchPredictionRequest",
        __config__=ConfigDict(extra="forbid"),
        rows=(rows, Field(min_length=1, max_length=max_rows)),
    )


class Prediction(BaseModel):
    prediction_id: str
    variant: Literal["champion", "challenger"]
    model_version: str
    prediction: float = Field(
        description="the positive class's probability (binary), the likeliest class's "
        "probability (three or more classes), or the value (regression)"
    )
    label: int | str | None = Field(
        default=None,
        description=f"binary: 1 when prediction >= {DECISION_THRESHOLD}, else 0; three or more "
        "classes: the likeliest class; regression: none",
    )
    probabilities: dict[str, float] | None = Field(
        default=None, description="three or more classes: every class's probability, by class"
    )


class BatchPrediction(BaseModel):
    predictions: list[Prediction]


def _class_values(target: ColumnSpec) -> tuple[str | int | float, ...]:
    """A binary target's classes as clients may send them: the text, and the number it spells."""
    values: list[str | int | float] = []
    for name in target.classes or ():
        values.append(name)
        try:
            number = float(name)
        except ValueError:
            continue
        values.append(int(number) if number.is_integer() else number)
    return tuple(values)


def _not_a_boolean(value: Any) -> Any:
    """`true` equals 1 to Python, but it is no class a label file holds."""
    if isinstance(value, bool):
        raise ValueError("expected one of the target's classes, not a boolean")
    return value


def _label_of(target: ColumnSpec) -> Any:
    def label(value: Any) -> float:
        converted = target.label(value)
        if converted is None:
            raise ValueError(f"not a value the target {target.name} takes")
        return converted

    return AfterValidator(label)


def feedback_model(target: ColumnSpec) -> type[BaseModel]:
    """A label the target column can take (a binary target's two classes, a regression target's
    range), in the API schema so clients see it; anything else is a 422 naming `label`. The
    route receives the label as the model reads it: 1.0 for the positive class. A prediction
    labelled again takes the new label; `labelled_by` says who, for the history."""
    kind: Any = (
        Annotated[Literal[_class_values(target)], BeforeValidator(_not_a_boolean)]
        if target.classes is not None
        else _number(target)
    )
    return create_model(
        "Feedback",
        __config__=ConfigDict(extra="forbid"),
        prediction_id=(Annotated[str, UNICODE_TEXT], Field(min_length=1, max_length=64)),
        label=(Annotated[kind, _label_of(target)], Field(description=target.description)),
        labelled_by=(
            Annotated[str, Field(min_length=1, max_length=64), UNICODE_TEXT] | None,
            Field(
                default=None,
                description="Who gave the label (a person, a labelling job): kept in the log's "
                "label history, so a relabel says who changed the label.",
            ),
        ),
    )


@dataclass(frozen=True)
class RequestModels:
    """The three request bodies, built once per app from the project's data schema."""

    row: type[BaseModel]
    batch: type[BaseModel]
    feedback: type[BaseModel]

    @classmethod
    def for_schema(cls, schema: DataSchema, settings: ServeConfig) -> RequestModels:
        row = request_row_model(schema, settings)
        return cls(
            row=row,
            batch=batch_request_model(row, settings.max_batch_rows),
            feedback=feedback_model(schema.target),
        )


class ErrorDetail(BaseModel):
    """What the service's own refusals carry (a 422 from validation lists the fields instead)."""

    detail: str


class Metadata(BaseModel):
    model_name: str
    variants: dict[str, dict[str, str | None]]
    online_mode: str
