"""Stage 5, serve: the champion online (FastAPI) and in bulk (batch scoring).

Public entry points: `create_app(project)` / `run_server(project)` for the service,
`batch_predict(project, source, output)` for files of any size, and `replay(project, source,
url)`, which sends a file's rows (and then their labels) to a running service as clients would.
"""

from .app import create_app, run_server
from .batch import BatchResult, batch_predict
from .replay import ReplayResult, replay

__all__ = ["BatchResult", "ReplayResult", "batch_predict", "create_app", "replay", "run_server"]
