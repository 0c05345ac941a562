"""The routes and the service state without HTTP: a route is a function of a body and a state."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from fastapi import HTTPException
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.config import ConfigError, Project, load_project
from {{ cookiecutter.package_name }}.data import ingest, read_snapshot
from {{ cookiecutter.package_name }}.features import model_input
from {{ cookiecutter.package_name }}.metrics import predict_scores
from {{ cookiecutter.package_name }}.predictions import PredictionLog
from {{ cookiecutter.package_name }}.scoring import COMPILED, SCIKIT_LEARN, SCORE_TOLERANCE
from {{ cookiecutter.package_name }}.serve.routes import authorised, feedback, predict, predict_batch, ready
from {{ cookiecutter.package_name }}.serve.schemas import Prediction, RequestModels
from {{ cookiecutter.package_name }}.serve.state import ServiceState
from {{ cookiecutter.package_name }}.store import CHAMPION, Store

from .conftest import write_project
from .test_serve import FAST, _rows, _trained

# Every test reads files the answers shape (tests/answers.py), and only through the task and the
# model family: its projects come from write_project, which sets their data source.
pytestmark = [pytest.mark.answers, pytest.mark.task_family_only]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return _trained(tmp_path_factory.mktemp("routes"))


@contextmanager
def service_state(project: Project) -> Iterator[ServiceState]:
    """A service's state, closed as the app's lifespan would: shadow work done, log flushed."""
    state = ServiceState(project)
    try:
        yield state
    finally:
        asyncio.run(state.close())


@pytest.fixture
def service(trained: Project) -> Iterator[ServiceState]:
    """The state of a service for the trained project, its champion loaded."""
    with service_state(trained) as state:
        state.models.refresh()
        yield state


def _bodies(state: ServiceState) -> RequestModels:
    return RequestModels.for_schema(state.schema, state.settings)


def test_the_batch_route_scores_like_the_model_in_process(
    trained: Project, service: ServiceState
) -> None:
    rows = _rows(trained, 20)
    body = _bodies(service).batch.model_validate({"rows": rows})
    answer = asyncio.run(predict_batch(body, service))
    _, model = Store.open(trained).load_champion()
    schema = read_snapshot(trained.snapshots_dir).schema
    frame = model_input(pd.DataFrame(rows), schema)
    expected = predict_scores(model, frame, trained.config.train.task)
    assert [p.prediction for p in answer.predictions] == pytest.approx(
        list(expected), abs=SCORE_TOLERANCE, rel=SCORE_TOLERANCE
    )
    assert {(p.variant, p.model_version) for p in answer.predictions} == {("champion", "1")}
    asyncio.run(service.log.flush())
    logged = PredictionLog(trained.prediction_log_url).read()
    assert {p.prediction_id for p in answer.predictions} <= set(logged["prediction_id"])


def test_concurrent_single_rows_share_one_model_call(
    trained: Project, service: ServiceState
) -> None:
    bodies = _bodies(service)
    rows = _rows(trained, 10)

    async def concurrently() -> list[Prediction]:
        batcher = asyncio.create_task(service.batcher.run())
        try:
            return await asyncio.gather(
                *(predict(bodies.row.model_validate(row), service) for row in rows)
            )
        finally:
            batcher.cancel()

    answers = asyncio.run(concurrently())
    assert len({answer.prediction_id for answer in answers}) == 10
    assert service.metrics.rows["champion"] == 10
    assert service.metrics.latency_count["champion"] == 1


def test_feedback_is_accepted_only_for_a_served_prediction(
    trained: Project, service: ServiceState
) -> None:
    bodies = _bodies(service)
    rows = _rows(trained, 1)
    served = asyncio.run(predict_batch(bodies.batch.model_validate({"rows": rows}), service))
    prediction_id = served.predictions[0].prediction_id
    label = 1.0 if trained.config.train.task == "binary_classification" else 42.0
    known = bodies.feedback.model_validate({"prediction_id": prediction_id, "label": label})
    assert asyncio.run(feedback(known, service)) == {"status": "accepted"}
    unknown = bodies.feedback.model_validate({"prediction_id": "nope", "label": label})
    with pytest.raises(HTTPException) as refused:
        asyncio.run(feedback(unknown, service))
    assert refused.value.status_code == 404
    asyncio.run(service.log.flush())
    logged = PredictionLog(trained.prediction_log_url).read().set_index("prediction_id")
    assert logged.loc[prediction_id, "label"] == label


def test_the_api_key_dependency(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = write_project(
        tmp_path, sections={"serve": {"require_api_key": True, "api_key_env": "ROUTES_KEY"}}
    )
    with pytest.raises(ConfigError, match="ROUTES_KEY"):
        ServiceState(project)
    monkeypatch.setenv("ROUTES_KEY", "s3cret-value")
    with service_state(project) as state:
        for wrong in ("", "wrong", "s3cret-valu"):
            with pytest.raises(HTTPException) as refused:
                asyncio.run(authorised(state, wrong))
            assert refused.value.status_code == 401
        asyncio.run(authorised(state, "s3cret-value"))
    monkeypatch.delenv("ROUTES_KEY")
    open_project = write_project(tmp_path / "open", sections={"serve": FAST})
    with service_state(open_project) as state:
        asyncio.run(authorised(state, ""))


def test_without_a_champion_ready_and_predict_answer_503(tmp_path: Path) -> None:
    project = write_project(tmp_path, sections={"serve": FAST})
    ingest(project)  # data to build a request from, but no model
    with service_state(project) as state:
        state.models.refresh()
        answer = asyncio.run(ready(state))
        assert answer.status_code == 503
        body = json.loads(bytes(answer.body))
        assert body["ready"] is False
        assert body["models"] == {}
        assert body["registry_error"] is None, "no champion yet is not a registry error"
        batch = _bodies(state).batch.model_validate({"rows": _rows(project, 1)})
        with pytest.raises(HTTPException) as refused:
            asyncio.run(predict_batch(batch, state))
        assert refused.value.status_code == 503


def test_a_moved_project_is_served_through_one_store(trained: Project, tmp_path: Path) -> None:
    """The store is re-pointed at the new folder when first opened; later polls reuse it."""
    moved_root = tmp_path / "moved"
    shutil.copytree(trained.root, moved_root)
    moved = load_project(moved_root / "configs" / "project.yaml")
    with service_state(moved) as state:
        assert state.models.refresh()
        store = state.models.store
        assert store is not None
        assert state.models.models["champion"].version == "1"
        champion = store.alias_version(CHAMPION)
        assert champion is not None
        assert champion.run_id is not None
        artifacts = store.client.get_run(champion.run_id).info.artifact_uri
        assert artifacts.startswith(moved.artifact_root.as_uri()), "re-pointed at the new folder"
        assert not state.models.refresh(), "nothing changed"
        assert state.models.store is store
        assert state.models.last_error is None


def test_a_store_that_cannot_be_opened_is_retried_on_every_poll(
    trained: Project, tmp_path: Path
) -> None:
    """An unreadable store at start-up is an outage like any other: /ready says why, and the
    next poll opens the store once it can."""
    shutil.copytree(trained.root, tmp_path / "copy")
    project = load_project(tmp_path / "copy" / "configs" / "project.yaml")
    saved = project.local_store.read_bytes()
    project.local_store.write_bytes(b"not a database" * 1000)
    with service_state(project) as state:
        state.models.refresh()
        answer = asyncio.run(ready(state))
        assert answer.status_code == 503
        assert json.loads(bytes(answer.body))["registry_error"].startswith("registry: ")
        assert state.models.store is None
        project.local_store.write_bytes(saved)
        assert state.models.refresh()
        assert asyncio.run(ready(state)).status_code == 200
        assert state.models.last_error is None


def test_a_registry_that_stops_answering_is_named_by_ready(trained: Project) -> None:
    """A dead tracking server makes MLflow's client retry for minutes: no error comes back, so
    /ready reads the silence itself once it outlasts two poll intervals."""
    with service_state(trained) as state:
        assert state.models.refresh()
        assert json.loads(bytes(asyncio.run(ready(state)).body))["registry_error"] is None
        silent = 3 * trained.config.serve.registry_poll_seconds
        state.models.last_checked = datetime.now(UTC) - timedelta(seconds=silent)
        answer = asyncio.run(ready(state))
        assert answer.status_code == 200, "it keeps serving the champion it has"
        error = json.loads(bytes(answer.body))["registry_error"]
        assert error == f"no answer from the registry for {silent:.0f} s"


def _serving(project: Project, **serve: str) -> Project:
    """The project with other `serve` settings, same store and log."""
    settings = project.config.serve.model_copy(update=serve)
    config = project.config.model_copy(update={"serve": settings})
    return dataclasses.replace(project, config=config)


def test_fields_the_schema_leaves_out_are_ignored_counted_and_never_logged(
    trained: Project, service: ServiceState
) -> None:
    """A row as its file holds it carries columns `schema infer` left out: ingest and
    batch-predict ignore them, and so does the service (`serve.extra_columns: ignore`)."""
    bodies = _bodies(service)
    rows = _rows(trained, 5)
    extended = [row | {"left_out_column": "N123XY", "note": i} for i, row in enumerate(rows)]
    plain = asyncio.run(predict_batch(bodies.batch.model_validate({"rows": rows}), service))
    wide = asyncio.run(predict_batch(bodies.batch.model_validate({"rows": extended}), service))
    assert [p.prediction for p in wide.predictions] == [p.prediction for p in plain.predictions]
    assert service.metrics.rows_with_ignored_fields == 5
    assert "service_rows_with_ignored_fields_total 5" in service.metrics.render()
    asyncio.run(service.log.flush())
    logged = PredictionLog(trained.prediction_log_url).read()
    assert "N123XY" not in json.dumps(logged["features"].tolist(), default=str)


def _unseen_count(page: str, column: str) -> float:
    """The `service_unseen_categories_total` sample of one column on a /metrics page."""
    label = 'column="' + column + '"'
    name = "service_unseen_categories_total"
    line = next(line for line in page.splitlines() if line.startswith(name) and label in line)
    return float(line.split()[-1])


@pytest.mark.parametrize("scoring", [COMPILED, SCIKIT_LEARN])
def test_an_unseen_category_is_scored_as_the_pipeline_scores_an_unknown(
    trained: Project, scoring: str
) -> None:
    """Both scoring paths answer what the fitted scikit-learn pipeline answers for a category it
    never saw (its one-hot encoder lights no column); the service counts each such value."""
    project = _serving(trained, scoring=scoring)
    schema = read_snapshot(project.snapshots_dir).schema
    column = schema.categorical_features[0]
    rows = [row | {column: "never-seen"} for row in _rows(project, 8)]
    with service_state(project) as state:
        state.models.refresh()
        assert state.models.models[CHAMPION].scorer.kind == scoring
        body = _bodies(state).batch.model_validate({"rows": rows})
        answer = asyncio.run(predict_batch(body, state))
        page = state.metrics.render()
    _, model = Store.open(project).load_champion()
    frame = model_input(pd.DataFrame(rows), schema)
    expected = predict_scores(model, frame, project.config.train.task)
    assert [p.prediction for p in answer.predictions] == pytest.approx(
        list(expected), abs=SCORE_TOLERANCE, rel=SCORE_TOLERANCE
    )
    assert _unseen_count(page, column) == 8
    others = [name for name in schema.categorical_features if name != column]
    assert [_unseen_count(page, name) for name in others] == [0] * len(others)


def test_whole_numbers_sent_for_a_category_are_its_text(
    trained: Project, service: ServiceState
) -> None:
    """A file's categories "1", "2" reach a client as numbers: 2 and 2.0 are the category "2",
    as ingest reads them; a boolean is no category."""
    bodies = _bodies(service)
    column = service.schema.categorical_features[0]
    row = _rows(trained, 1)[0]
    assert getattr(bodies.row.model_validate(row | {column: 2}), column) == "2"
    assert getattr(bodies.row.model_validate(row | {column: 2.0}), column) == "2"
    with pytest.raises(ValidationError) as refused:
        bodies.row.model_validate(row | {column: True})
    assert refused.value.errors()[0]["loc"] == (column,)


@pytest.mark.parametrize(
    ("settings", "change", "field", "says"),
    [
        ({"extra_columns": "refuse"}, {"left_out_column": "N123XY"}, "left_out_column", "Extra"),
        ({"unseen_categories": "refuse"}, "unseen", "category", "Input should be"),
    ],
)
def test_refusing_settings_answer_a_422_that_names_the_field(
    trained: Project, settings: dict[str, str], change: object, field: str, says: str
) -> None:
    project = _serving(trained, **settings)
    with service_state(project) as state:
        bodies = _bodies(state)
        row = _rows(project, 1)[0]
        column = state.schema.categorical_features[0]
        if change == "unseen":
            change, field = {column: "never-seen"}, column
        assert isinstance(change, dict)
        with pytest.raises(ValidationError) as refused:
            bodies.row.model_validate(row | change)
        error = refused.value.errors()[0]
        assert error["loc"] == (field,)
        assert says in error["msg"]
        if field == column:  # the 422 lists what the schema knows
            known = state.schema.column(column).categories or ()
            assert all(repr(category) in error["msg"] for category in known)
        # Numbers keep refusing text whatever the settings.
        number = state.schema.numeric_features[0]
        with pytest.raises(ValidationError):
            bodies.row.model_validate(row | {number: "5"})
