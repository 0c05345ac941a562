"""Stage 4, promote: a challenger replaces the champion only when the evidence says so.

Public entry points: `promote(project)` (the offline gate, whose rule is `gate.decide`),
`rollback(project)`, and `ab_report(project)` (the online experiment). Every call writes a
decision record; the champion alias moves only after the gate has passed.
"""

from .gate import Evidence, Measured, Verdict, decide
from .online import ab_report, assign_variant
from .promotion import promote, rollback
from .record import Decision, Outcome, record_decision

__all__ = [
    "Decision",
    "Evidence",
    "Measured",
    "Outcome",
    "Verdict",
    "ab_report",
    "assign_variant",
    "decide",
    "promote",
    "record_decision",
    "rollback",
]
