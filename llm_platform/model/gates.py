"""Quality gates a candidate model must pass before it is promoted to production.

Three kinds of gate (`GateKind`), one result each, answering the typed `GateCheck`
of its metric and kind (the asset check model_eval declares):

- `<metric>>=min` (or `<metric><=max` for lower-is-better metrics): an absolute
  floor (ceiling) from config.
- `<metric>_no_regression`: the candidate may not be worse than production by
  more than `max_regression`. For higher-is-better metrics (scores in [0, 1])
  the margin is absolute: candidate < production - max_regression fails. For
  perplexity, whose scale depends on the tokenizer and data, the margin is
  relative: candidate > production * (1 + max_regression) fails.

- `<metric>_beats_base`: the candidate must be better than the base model it
  was tuned from by at least the configured margin (relative for perplexity,
  absolute otherwise), and strictly better when the margin is 0: an adapter
  that learned nothing, or broke the model, is not a candidate.

Regression gates cover the gated metrics (the keys of `minimums`); with no
production model yet there is nothing to regress from and none are produced.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

LOWER_IS_BETTER = frozenset({"perplexity"})


class GateKind(StrEnum):
    """The gates of a metric: its configured bound, no regression against
    production, and (where configured) beating the base model.
    """

    BOUND = "bound"
    NO_REGRESSION = "no_regression"
    BEATS_BASE = "beats_base"


@dataclass(frozen=True)
class GateCheck:
    """The asset check of one gate, built from its metric and kind; code compares these, never parsed names."""

    metric: str
    kind: GateKind

    @property
    def name(self) -> str:
        """The check name the UI shows: `<metric>_bound`, `<metric>_no_regression` or `<metric>_beats_base`."""
        return f"{self.metric}_{self.kind.value}"

    @property
    def description(self) -> str:
        """What the check requires, naming the config field that sets its bound (the UI shows it beside the check)."""
        lower = self.metric in LOWER_IS_BETTER
        if self.kind is GateKind.BOUND:
            return f"the candidate's {self.metric} is at {'most' if lower else 'least'} gates.minimums.{self.metric}"
        how = " (relative)" if lower else ""
        if self.kind is GateKind.NO_REGRESSION:
            return f"the candidate's {self.metric} is no worse than production's by more than gates.max_regression{how}"
        return f"the candidate's {self.metric} beats the base model's by at least gates.beat_base.{self.metric}{how}"


def gate_checks(metrics: Iterable[str], beat_base: Iterable[str] = ()) -> list[GateCheck]:
    """The bound and no-regression checks of each gated metric, in metric
    order, then a beats-base check per `beat_base` metric.
    """
    bounded = [GateCheck(metric, kind) for metric in metrics for kind in (GateKind.BOUND, GateKind.NO_REGRESSION)]
    return bounded + [GateCheck(metric, GateKind.BEATS_BASE) for metric in beat_base]


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict, for the check it answers.

    `value` is the candidate's score; `minimum` is what config set for this gate: the bound
    (a maximum for lower-is-better metrics), the allowed regression, or the required gain
    over the base; `baseline` is the score compared against (production's or the base
    model's, see `compared_with`); `delta` is value minus bound, the change against
    production, or the gain over the base.
    """

    check: GateCheck
    passed: bool
    value: float
    minimum: float | None
    baseline: float | None
    delta: float | None
    message: str

    @property
    def metric(self) -> str:
        """The gate's label in messages and stored records: "rouge_l>=min",
        "perplexity<=max" or "rouge_l_no_regression".
        """
        metric = self.check.metric
        if self.check.kind is GateKind.BOUND:
            return f"{metric}<=max" if metric in LOWER_IS_BETTER else f"{metric}>=min"
        return self.check.name

    @property
    def bound_label(self) -> str:
        """What `minimum` is, as metadata and verdicts name it."""
        if self.check.kind is GateKind.BOUND:
            return "maximum" if self.check.metric in LOWER_IS_BETTER else "minimum"
        return "allowed_regression" if self.check.kind is GateKind.NO_REGRESSION else "required_gain"

    @property
    def compared_with(self) -> str | None:
        """Whose score `baseline` is: "production", "base", or None for a bound."""
        return {GateKind.NO_REGRESSION: "production", GateKind.BEATS_BASE: "base"}.get(self.check.kind)

    def as_record(self) -> dict:
        """The verdict as model_eval stores it, keyed by the gate's label."""
        return {
            "metric": self.metric,
            "passed": self.passed,
            "value": self.value,
            "minimum": self.minimum,
            "baseline": self.baseline,
            "delta": self.delta,
            "message": self.message,
        }


def bound_gate(metric: str, value: float | None, bound: float) -> GateResult:
    """Check `value` against its configured floor (or ceiling for lower-is-better metrics)."""
    lower = metric in LOWER_IS_BETTER
    gate = GateCheck(metric, GateKind.BOUND)
    if value is None or math.isnan(value):
        return GateResult(
            gate,
            False,
            math.nan,
            bound,
            None,
            None,
            f"{metric} is missing from the candidate's scores; re-run model_eval",
        )
    passed = value <= bound if lower else value >= bound
    kind = "maximum" if lower else "minimum"
    if passed:
        message = f"{metric} {value:.4g} meets the {kind} {bound:.4g}"
    else:
        message = (
            f"{metric} {value:.4g} is {abs(value - bound):.4g} {'above' if lower else 'below'} the {kind} {bound:.4g}"
        )
    return GateResult(gate, passed, value, bound, None, value - bound, message)


def regression_gate(metric: str, value: float | None, baseline: float | None, *, max_regression: float) -> GateResult:
    """Check that `value` is not worse than production's `baseline` beyond `max_regression`."""
    gate = GateCheck(metric, GateKind.NO_REGRESSION)
    if value is None or math.isnan(value):
        return GateResult(
            gate,
            False,
            math.nan,
            max_regression,
            baseline,
            None,
            f"{metric} is missing from the candidate's scores; re-run model_eval",
        )
    if baseline is None or math.isnan(baseline):
        return GateResult(
            gate,
            True,
            value,
            max_regression,
            None,
            None,
            f"production has no {metric} score; nothing to compare against",
        )
    if metric in LOWER_IS_BETTER:
        return _relative_regression(metric, value, baseline, max_regression)
    drop = baseline - value
    passed = drop <= max_regression
    how = f"{drop:.4g} below" if drop > 0 else f"{-drop:.4g} above"
    message = f"{metric} {value:.4g} is {how} production {baseline:.4g} (allowed drop {max_regression:.4g})"
    return GateResult(gate, passed, value, max_regression, baseline, value - baseline, message)


def _relative_regression(metric: str, value: float, baseline: float, max_regression: float) -> GateResult:
    change = value / baseline - 1 if baseline > 0 else math.inf
    passed = value <= baseline * (1 + max_regression)
    how = f"{change:.1%} above" if change > 0 else f"{-change:.1%} below"
    message = f"{metric} {value:.4g} is {how} production {baseline:.4g} (allowed increase {max_regression:.1%})"
    return GateResult(
        GateCheck(metric, GateKind.NO_REGRESSION), passed, value, max_regression, baseline, value - baseline, message
    )


def beat_base_gate(metric: str, value: float | None, base: float | None, *, margin: float) -> GateResult:
    """Check that the candidate improves on the base model by at least `margin` (and at all)."""
    gate = GateCheck(metric, GateKind.BEATS_BASE)
    for name, score in (("candidate", value), ("base model", base)):
        if score is None or math.isnan(score):
            return GateResult(
                gate,
                False,
                math.nan if value is None else value,
                margin,
                base,
                None,
                f"{metric} is missing from the {name}'s scores; re-run model_eval",
            )
    assert value is not None and base is not None  # the loop above returned for either missing
    if metric in LOWER_IS_BETTER:
        gain = 1 - value / base if base > 0 else -math.inf
        shown = (
            f"{abs(gain):.1%} {'below' if gain >= 0 else 'above'} base {base:.4g} (required improvement {margin:.1%})"
        )
    else:
        gain = value - base
        shown = (
            f"{abs(gain):.4g} {'above' if gain >= 0 else 'below'} base {base:.4g} (required improvement {margin:.4g})"
        )
    passed = gain > 0 and gain >= margin
    return GateResult(gate, passed, value, margin, base, gain, f"{metric} {value:.4g} is {shown}")


def evaluate_gates(
    candidate: Mapping[str, float],
    production: Mapping[str, float] | None,
    *,
    minimums: Mapping[str, float],
    max_regression: float = 0.02,
    base: Mapping[str, float] | None = None,
    beat_base: Mapping[str, float] | None = None,
) -> list[GateResult]:
    """One GateResult per bound in `minimums`, per `beat_base` margin (given base
    scores) and, given production, per regression check.
    """
    if max_regression < 0:
        raise ValueError(f"max_regression must be >= 0, got {max_regression}")
    results = [bound_gate(metric, candidate.get(metric), bound) for metric, bound in minimums.items()]
    for metric, margin in (beat_base or {}).items():
        if margin < 0:
            raise ValueError(f"beat_base margin for {metric} must be >= 0, got {margin}")
        results.append(beat_base_gate(metric, candidate.get(metric), (base or {}).get(metric), margin=margin))
    if production is not None:
        results += [
            regression_gate(metric, candidate.get(metric), production.get(metric), max_regression=max_regression)
            for metric in minimums
        ]
    return results
