"""{{ (cookiecutter.project_name | trim | to_json(ensure_ascii=False))[1:-1] }}.

{{ (cookiecutter.description | trim | to_json(ensure_ascii=False))[1:-1] }}

Stages, each with one public entry point, in the order data flows: `data.ingest`,
`features.build_feature_pipeline`, `train.train`, `promote.promote`, `serve.create_app` and
`serve.batch_predict`, `monitor.monitor`; `retrain.retrain` runs the loop again.
"""

__version__ = "0.1.0"
