"""Stage 6, monitor: is the live data still the data the champion learned from, and is it as good?

Public entry point: `monitor(project)`. It writes an Evidently report, a summary and the
`retrain` flag that CI reads.
"""

from .monitoring import MonitorResult, Status, monitor

__all__ = ["MonitorResult", "Status", "monitor"]
