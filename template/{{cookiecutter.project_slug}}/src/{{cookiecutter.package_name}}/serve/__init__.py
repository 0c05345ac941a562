"""Stage 5, serve: the champion online (FastAPI) and in bulk (batch scoring).

Public entry points: `create_app(project)` / `run_server(project)` for the service and
`batch_predict(project, source, output)` for files of any size.
"""

from .app import create_app, run_server
from .batch import BatchResult, batch_predict

__all__ = ["BatchResult", "batch_predict", "create_app", "run_server"]
