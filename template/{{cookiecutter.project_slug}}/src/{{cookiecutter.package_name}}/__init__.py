"""{{ cookiecutter.project_name }}: {{ cookiecutter.description }}

Stages, each with one public entry point, in the order data flows:
`data.ingest` -> `features.build_feature_pipeline` -> `train.train`.
"""

__version__ = "0.1.0"
