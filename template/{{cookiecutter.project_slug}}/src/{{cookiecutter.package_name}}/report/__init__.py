"""The loop's story on one page, for a person who would rather look than read logs.

Public entry point: `write_report(project, out)`. It reads only what the loop left behind (the
registry, the prediction log, the newest monitor summary and the decision records) and writes
one self-contained HTML file, `reports/loop.html` by default.
"""

from .page import PAGE_NAME, LoopPage, write_report

__all__ = ["PAGE_NAME", "LoopPage", "write_report"]
