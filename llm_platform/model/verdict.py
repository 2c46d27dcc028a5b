"""The gates' verdict on a candidate in words a newcomer can read.

Which gates were applied, each one's candidate value, bound and what it was
compared with, pass or fail, and whether the adapter may therefore be promoted.
model_eval stores it in its metadata and its MLflow run; the demo prints it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from llm_platform.model.gates import GateCheck, GateResult

NOT_APPLIED_WITHOUT_PRODUCTION = "not applied: no production model yet, nothing to regress from"


def _number(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4g}"


@dataclass(frozen=True)
class Verdict:
    """Every declared gate check of one evaluation: the results of those applied, and why the others were not."""

    applied: tuple[GateResult, ...]
    not_applied: tuple[tuple[GateCheck, str], ...] = ()

    @classmethod
    def of(cls, gates: Sequence[GateResult], checks: Sequence[GateCheck]) -> Verdict:
        """The verdict of `gates` over the declared `checks`; a check with no
        result is one that needs a production model.
        """
        answered = {gate.check for gate in gates}
        return cls(
            tuple(gates), tuple((check, NOT_APPLIED_WITHOUT_PRODUCTION) for check in checks if check not in answered)
        )

    @property
    def passed(self) -> bool:
        """Every applied gate passed, and at least one was applied."""
        return bool(self.applied) and all(gate.passed for gate in self.applied)

    @property
    def failed(self) -> list[GateResult]:
        return [gate for gate in self.applied if not gate.passed]

    def summary(self) -> str:
        """One sentence: promotable or not, and why."""
        if not self.applied:
            return (
                "not promotable: no gate is configured, so nothing checks this "
                "adapter; set gates.minimums or gates.beat_base"
            )
        if self.passed:
            names = ", ".join(gate.check.name for gate in self.applied)
            return f"promotable: all {len(self.applied)} gates applied passed ({names})"
        reasons = "; ".join(f"{gate.check.name}: {gate.message}" for gate in self.failed)
        return f"not promotable: {len(self.failed)} of {len(self.applied)} gates failed ({reasons})"

    def rows(self) -> list[dict[str, str]]:
        """One row per declared check, for a table: gate, result, candidate, bound, compared with, detail."""
        rows = [
            {
                "gate": gate.check.name,
                "result": "pass" if gate.passed else "FAIL",
                "candidate": _number(gate.value),
                "bound": f"{gate.bound_label} {_number(gate.minimum)}",
                "compared_with": f"{gate.compared_with} {_number(gate.baseline)}" if gate.compared_with else "-",
                "detail": gate.message,
            }
            for gate in self.applied
        ]
        return rows + [
            {
                "gate": check.name,
                "result": "not applied",
                "candidate": "-",
                "bound": "-",
                "compared_with": "-",
                "detail": why,
            }
            for check, why in self.not_applied
        ]

    def as_json(self) -> dict:
        """The verdict as stored beside the run: whether it passed, the sentence, and the rows."""
        return {"passed": self.passed, "summary": self.summary(), "gates": self.rows()}
