"""Atom allocation for ``evaluate(..., target_w1=eps)``: predict the atoms each input needs from the bound terms.

Each refinement round reports the bound split by source (one term per input, one for the compressions, and
terms that no atom count changes, such as a previous result's own bound). Each variable term is modelled as
``t_i(n) = c_i n**-p_i`` with an order ``p_i`` fitted from the last two rounds in which ``n_i`` changed (1 until
then: the first-order rate of quantile midpoints; second-order terms, as for the smoothed operand of a sum, fit
``p`` near 2). The next allocation minimises the work of one evaluation ``W(n)`` subject to ``sum t_i(n_i) <=
safety * eps - fixed``. Locally ``log W`` is linear in ``log n_i`` with slopes ``e_i`` (the work elasticities:
1 for every input of a plain joint grid ``prod n_i``, about 2 for the compression size of a graph whose compressed
grids dominate, near 0 for an input that only enters one small grid); with Lagrange multipliers the optimum gives
each free term the share ``t_i ∝ e_i / p_i``. The elasticities are measured on the given cost function (the
planned grid sizes) by doubling one count at a time, at the current counts and then once more at the prediction.
Without a cost function every ``e_i`` is 1 (the joint grid). Atom counts never decrease (a variable whose share would need fewer atoms keeps its count and its term is charged
to the budget first), so the bound of the next round is no larger up to the model error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

COMPRESS = "__compress__"
_P_MIN, _P_MAX = 0.5, 3.0
_E_MIN, _E_MAX = 0.05, 4.0

Cost = Callable[[Mapping[str, int]], float | None]


@dataclass
class Split:
    """One round's bound split: variable terms by variable name, and the fixed part (W1 units)."""

    terms: dict[str, float]
    fixed: float


def split_terms(bound_terms: Mapping[str, float], label_to_input: Mapping[str, str]) -> Split:
    """Group ``bound_terms`` into per-input terms, one compression term and a fixed remainder.

    Args:
        bound_terms: A result's ``bound_terms`` (label -> W1 contribution).
        label_to_input: The input labels of this round (label -> input name).

    Returns:
        The :class:`Split`.
    """
    terms: dict[str, float] = {}
    fixed = 0.0
    for key, v in bound_terms.items():
        v = float(v)
        if key in label_to_input:
            name = label_to_input[key]
            terms[name] = terms.get(name, 0.0) + v
        elif key.startswith("compression"):
            terms[COMPRESS] = terms.get(COMPRESS, 0.0) + v
        else:
            fixed += v
    return Split(terms, fixed)


@dataclass
class Allocator:
    """Predicts the next round's atom counts from the history of (atoms, bound split) pairs.

    Attributes:
        target: The requested bound (W1 units).
        safety: Fraction of ``target`` the prediction aims at (model error margin).
        max_atoms: Largest atom count any one variable may get.
        max_growth: Largest factor by which one round may multiply a count (the fitted orders are only as good as
            the rounds they come from; a capped step costs a fraction of the final round and fixes the order).
    """

    target: float
    safety: float = 0.8
    max_atoms: int = 2**22
    max_growth: float = 16.0
    history: list[tuple[dict[str, int], dict[str, float]]] = field(default_factory=list)

    def order(self, var: str) -> float:
        """The fitted order ``p`` of ``var``'s term (1 until two rounds with different counts exist)."""
        pts = [(a[var], t[var]) for a, t in self.history if var in a and t.get(var, 0.0) > 0]
        for k in range(len(pts) - 1, 0, -1):
            (n1, t1), (n0, t0) = pts[k], pts[k - 1]
            if n1 != n0 and t0 > 0 and t1 > 0:
                p = math.log(t0 / t1) / math.log(n1 / n0)
                if math.isfinite(p):
                    return min(max(p, _P_MIN), _P_MAX)
        return 1.0

    @staticmethod
    def elasticities(cost: Cost | None, at: Mapping[str, int], names: set[str]) -> dict[str, float]:
        """``d log W / d log n_v`` for each of ``names`` at the counts ``at`` (1 each without a cost function)."""
        if cost is None:
            return dict.fromkeys(names, 1.0)
        base = cost(at)
        out = {}
        for v in names:
            up = cost({**at, v: 2 * at[v]}) if base else None
            if base and up is not None and up > 0:
                e = math.log(up / base) / math.log(2.0)
            else:
                e = _E_MAX  # doubling it breaks the memory budget: treat it as the most expensive
            out[v] = min(max(e, _E_MIN), _E_MAX)
        return out

    def propose(
        self,
        atoms: Mapping[str, int],
        split: Split,
        caps: Mapping[str, int] | None = None,
        cost: Cost | None = None,
    ) -> dict[str, int] | None:
        """Record this round and return the next atom counts (``None`` when the target looks out of reach).

        Args:
            atoms: This round's atom counts (input names, and :data:`COMPRESS` for the compression size).
            split: This round's bound split (see :func:`split_terms`).
            caps: Largest count each variable may get (for example the compression size whose grids still fit
                the memory budget); a capped variable keeps its predicted term at the cap and the others share
                the rest of the budget.
            cost: The work of one evaluation at given counts (cells; ``None`` where it does not fit), to which the
                allocation is fitted; without it the joint grid ``prod n_i``.

        Returns:
            New counts for every variable in ``atoms`` (each >= its current count).
        """
        self.history.append((dict(atoms), dict(split.terms)))
        budget = self.safety * self.target - split.fixed
        if budget <= 0:
            return None
        cur = {v: n for v, n in atoms.items() if split.terms.get(v, 0.0) > 0}
        p = {v: self.order(v) for v in cur}
        c = {v: split.terms[v] * cur[v] ** p[v] for v in cur}
        cap = {v: max(cur[v], min(self.max_atoms, (caps or {}).get(v, self.max_atoms))) for v in cur}
        e = self.elasticities(cost, atoms, set(cur))
        new, held = self._allocate(atoms, cur, p, c, cap, e, budget)
        if cost is not None and new is not None:
            # Refit the elasticities at the prediction (the plan, and with it the work's shape, may change).
            e2 = self.elasticities(cost, {**atoms, **new}, set(cur))
            new, held = self._allocate(atoms, cur, p, c, cap, {v: 0.5 * (e[v] + e2[v]) for v in cur}, budget)
        if new is None:
            return None
        hard = {v for v, n in held.items() if caps and v in caps and n >= cap[v]}
        if not any(v not in held for v in cur) and hard and sum(c[v] * n ** -p[v] for v, n in held.items()) > budget:
            return None  # every term is at its count or a hard cap, and together they still exceed the budget
        for v, n in held.items():
            new[v] = n if n == cur[v] else max(cur[v], min(n, math.ceil(cur[v] * self.max_growth)))
        return new

    def _allocate(
        self,
        atoms: Mapping[str, int],
        cur: dict[str, int],
        p: dict[str, float],
        c: dict[str, float],
        cap: dict[str, int],
        e: dict[str, float],
        budget: float,
    ) -> tuple[dict[str, int] | None, dict[str, int]]:
        """The Lagrange allocation with term shares ``∝ e_v / p_v`` (``None`` when the held terms use the budget).

        Returns the new counts of the free variables (others unchanged) and the variables held at their current
        count or at their cap.
        """
        new = dict(atoms)
        held: dict[str, int] = {}
        free = set(cur)
        while free:
            left = budget - sum(c[v] * n ** -p[v] for v, n in held.items())
            if left <= 0:
                return None, held
            tot = sum(e[v] / p[v] for v in free)
            pred = {v: (c[v] / (left * (e[v] / p[v]) / tot)) ** (1.0 / p[v]) for v in free}
            fix = {v: cur[v] for v in free if pred[v] <= cur[v]}
            fix.update({v: cap[v] for v in free if pred[v] >= cap[v] and v not in fix})
            if not fix:
                for v in free:
                    step = min(pred[v] * 1.02, cur[v] * self.max_growth, cap[v])
                    new[v] = max(cur[v] + 1, math.ceil(step)) if cap[v] > cur[v] else cur[v]
                break
            held.update(fix)
            free -= set(fix)
        return new, held
