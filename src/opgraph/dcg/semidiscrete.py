"""Semi-discrete certificate at the output: second order for every input but one, the last one measured exactly.

Setting. The output is ``Y = alpha * (A op C) + beta`` (a chain of ``neg`` and of ``+ - * /`` by constants after
the *core* node ``A op C``), ``op`` one of ``+ - * /``, ``C`` an exact input with a continuous law of known
regularity and ``A`` any node on other inputs (independent of ``C``). The engine returns the discrete law ``G`` of
the core on the joint grid. Triangle inequality through the semi-discrete law ``S = A'' op C`` (``A''`` a
monotone equal-mass regrouping of ``A``'s grid values, ``C`` kept continuous)::

    W1(Y_core, G) <= W1(A op C, A'' op C) + W1(S, G)

* The first term is of second order in ``A - A''``: conditioning on ``A''``, ``E g(a op C)`` has a bounded second
  derivative in ``a`` for every 1-Lipschitz ``g`` (``TV(p_C)`` for sums, ``TV(s^2 p_C(s)) / |a|`` for products,
  ``TV(p_C)`` of ``1/C`` for quotients); it is the engine's :meth:`~opgraph.dcg.engine.Evaluator._smoothed_term`
  and :meth:`~opgraph.dcg.engine.Evaluator._scaled_term` applied to ``A''``, whose per-group ``|E[A - A'']|`` and
  ``E[(A - A'')^2]`` the engine's compression bookkeeping provides (:meth:`Evaluator._compress`).
* The second term is computed, not bounded by a coupling: ``S`` has the CDF ``H(t) = sum_j w_j P(a_j op C <= t)``
  in closed form, ``G`` is a step function, and ``W1(S, G) = int |H - G| dt``. On a grid ``t_0 < ... < t_K``
  (``G``'s range, refined where ``H`` moves) ``H`` is monotone, so on each piece between consecutive grid points
  and atoms of ``G``, ``|H - G| <= max(H(t_{k+1}) - G, G - H(t_k))``; the tails beyond ``G``'s range are closed-form
  partial moments of ``C`` (``E(s - C)_+``, ``E(C - s)_+``), or 0 where ``S``'s support is inside the grid.

Why it is tighter: the coupling bounds charge every input's quantization at first order, ``sum_i L_i E|X_i -
X_i'|``, although the errors of a mixture of many atoms cancel. Here only ``A``'s regrouping error appears, at
second order, and ``C``'s discretization (together with all the cancellation between ``A``'s atoms and ``C``'s) is
measured as the exact W1 between two explicit laws. See ``docs/dcg.md`` (section "Semi-discrete output
certificate") for the statement and the proof sketch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np

from opgraph.dcg.distributions import Continuous
from opgraph.dcg.regroup import merge_duplicates, regroup
from opgraph.graph import Graph, Node

Terms = dict[str, float]
_EPS = float(np.finfo(float).eps)
#: Atoms of the regrouped operand ``A''`` (its second-order cost falls like 1 / atoms**2), and the larger size
#: tried when that cost still dominates (the measured term's work grows with it: atoms x grid points).
REGROUP_ATOMS = 256
REGROUP_ATOMS_MAX = 1024
#: Points of the first ``t`` grid (half on ``G``'s quantiles, half uniform), and refinement rounds.
GRID_POINTS = 4096
REFINE_ROUNDS = 3
#: ``(atoms of A'') x (grid points)`` CDF evaluations per block (memory of one block: 8 bytes each).
_BLOCK = 1 << 21
_AFFINE = ("neg", "mul", "div", "add", "sub")


#: The smallest bound reached so far by the evaluations of one output and its rewrites (:func:`shared_ceiling`).
_CEILING: ContextVar[list[float] | None] = ContextVar("semidiscrete_ceiling", default=None)


@contextmanager
def shared_ceiling() -> Iterator[None]:
    """Within the block, each affine certificate knows the best bound of the evaluations before it (same output).

    The engine evaluates an output and its rewritten form and keeps the smaller bound; a certificate that cannot
    go below what an earlier evaluation already reached is skipped (:func:`affine_floor`), which cannot change the
    bound returned.
    """
    tok = _CEILING.set([math.inf])
    try:
        yield
    finally:
        _CEILING.reset(tok)


def shared_best() -> list[float] | None:
    """The one-element list of :func:`shared_ceiling`'s best bound so far (None outside such a block).

    An evaluation may skip an optional certificate that cannot go below it, and records its final bound in it.
    """
    return _CEILING.get()


@dataclass(frozen=True)
class Core:
    """Where the certificate applies: the output is ``alpha * node + beta`` with ``node = a op c``.

    Attributes:
        node: The core node's id.
        op: ``"add"``, ``"sub"``, ``"mul"`` or ``"div"``.
        operands: The ids of the core's two operands, in order.
        alpha: ``|alpha|`` (the W1 scale of the affine chain).
        steps: Number of affine ops after the core (each rounds once).
    """

    node: int
    op: str
    operands: tuple[int, int]
    alpha: float
    steps: int


def const_value(graph: Graph, i: int) -> float | None:
    """Node ``i``'s value when it is a scalar constant, else None (shared with :mod:`opgraph.dcg.cancel`)."""
    n = graph.nodes[i]
    if n.op != "const":
        return None
    v = np.asarray(n.attrs["value"], dtype=float)
    return float(v) if v.size == 1 else None


def find_core(graph: Graph, output: int) -> Core | AffineCore | None:
    """The core node of ``output`` (see :class:`Core`), or None when the output has no such form.

    An output ``P + Q * C`` (``C`` an input used once, ``P`` and ``Q`` not constant) is an :class:`AffineCore`.
    """
    aff = find_affine_core(graph, output)
    if aff is not None:
        return aff
    return plain_core(graph, output)


def plain_core(graph: Graph, output: int) -> Core | None:
    """The :class:`Core` of ``output`` (``alpha * (a op c) + beta``), not looking for the affine form."""
    alpha, steps, i = 1.0, 0, output
    for _ in range(len(graph.nodes)):
        n = graph.nodes[i]
        if n.op == "neg" and len(n.inputs) == 1:
            i, steps = n.inputs[0], steps + 1
            continue
        if n.op in _AFFINE and len(n.inputs) == 2:
            cs = [const_value(graph, j) for j in n.inputs]
            if (cs[0] is None) != (cs[1] is None):
                k = 0 if cs[0] is None else 1  # the variable operand
                c = cs[1 - k]
                assert c is not None
                if n.op == "mul":
                    alpha *= abs(c)
                elif n.op == "div":
                    if k != 0 or c == 0:
                        return None  # c / x is not affine
                    alpha /= abs(c)
                i, steps = n.inputs[k], steps + 1
                continue
            if n.op in ("add", "sub", "mul", "div") and all(c is None for c in cs):
                if not (math.isfinite(alpha) and alpha > 0):
                    return None
                return Core(i, n.op, (n.inputs[0], n.inputs[1]), alpha, steps)
        return None
    return None


def _tree(
    graph: Graph, root: int, op: str, users: dict[int, tuple[int, ...]]
) -> tuple[list[int], dict[int, int], float]:
    """Leaves, parent links and constant factor of the single-use ``op`` tree at ``root``.

    Products also pass through multiplications and divisions by constants (``x * c``, ``x / c``; their product is
    the returned factor, 1 for sums). Returns the leaves, for every node below ``root`` its parent in the tree,
    and the constant factor.
    """
    leaves: list[int] = []
    parent: dict[int, int] = {}
    factor = 1.0
    stack = [root]
    while stack:
        i = stack.pop()
        n = graph.nodes[i]
        inner = i == root or len(users.get(i, ())) == 1
        if inner and len(n.inputs) == 2 and (n.op == op or (op == "mul" and n.op == "div")):
            cs = [const_value(graph, j) for j in n.inputs]
            if n.op == "div" and (cs[1] in (None, 0.0) or cs[0] is not None):
                leaves.append(i)
                continue
            for j in n.inputs:
                v = const_value(graph, j)
                if v is None:
                    parent[j] = i
                    stack.append(j)
                elif op == "add":
                    parent[j] = i
                    leaves.append(j)
                else:
                    factor = factor / v if n.op == "div" else factor * v
            continue
        leaves.append(i)
    return leaves, parent, factor


def reassociate(graph: Graph, output: int, score: dict[str, float], mode: str = "add") -> tuple[Graph, int] | None:
    """``output`` rewritten so that its core multiplies (adds) the best-scored input last.

    In the single-use tree of ``+`` (or of ``*``, with ``* c`` and ``/ c`` by constants) at the output's core (see
    :func:`find_core`), the input leaf ``C`` of lowest ``score`` (an input used nowhere else, so independent of
    the rest) is pulled out: ``core(..., C, ...) = core'(...) op C``. For sums ``core'`` is the same tree without
    ``C``; for products it is the balanced product of the other factors times the tree's constant factor (pairs
    first, which also tightens the law-level bound of long product chains). The value changes only by
    floating-point reassociation.

    Args:
        graph: The graph restricted to ``output`` (:func:`opgraph.dcg.engine.restrict`).
        output: The output id.
        score: Per input name, the estimated second-order cost of smoothing by that input (lower is better).
        mode: ``"add"`` or ``"mul"``, the tree kind to look for.

    Returns:
        The rewritten graph (restricted to its output) and the output's id, or None when nothing applies (no such
        tree, no candidate input, or the best input is already an operand of the core).
    """
    core = plain_core(graph, output)
    if core is None or core.op != mode:
        return None
    users = graph.users()
    leaves, parent, factor = _tree(graph, core.node, mode, users)
    cands = [
        i
        for i in leaves
        if graph.nodes[i].op == "input"
        and len(users.get(i, ())) == 1
        and leaves.count(i) == 1  # not ``y + y``: one user, but two leaves of the tree
        and graph.nodes[i].attrs["name"] in score
        and math.isfinite(score[graph.nodes[i].attrs["name"]])
    ]
    if len(leaves) < 3 or not cands:
        return None
    c = min(cands, key=lambda i: score[graph.nodes[i].attrs["name"]])
    # Walk up from C through scalings by constants: ``top`` is the subtree (kappa * C) to take out.
    kappa, top = 1.0, c
    while True:
        p = parent.get(top)
        if p is None:
            return None
        pn = graph.nodes[p]
        cs = [const_value(graph, j) for j in pn.inputs]
        v = next((x for x in cs if x is not None), None)
        if mode == "mul" and v is not None:
            kappa = kappa / v if pn.op == "div" else kappa * v
            top = p
            continue
        break
    if p == core.node and mode == "add":
        return None  # C is already an operand of the core
    nodes = list(graph.nodes)

    def add(op: str, inputs: tuple[int, ...], attrs: dict[str, Any], like: int) -> int:
        nodes.append(Node(len(nodes), op, inputs, attrs, dict(graph.nodes[like].meta)))
        return len(nodes) - 1

    if mode == "add":
        # Copy the path from p's parent up to the core, with p replaced by C's sibling.
        cur, repl = p, next(j for j in graph.nodes[p].inputs if j != top)
        while cur != core.node:
            u = parent[cur]
            un = graph.nodes[u]
            repl = add(un.op, tuple(repl if j == cur else j for j in un.inputs), dict(un.attrs), u)
            cur = u
    else:
        # Products: the other factors multiplied as a balanced tree (pairs first: smaller grids, and a tighter
        # law-level bound than a chain), then the constant factor of the whole tree.
        rest = [i for i in leaves if i != c]
        while len(rest) > 1:
            rest = [
                add("mul", (rest[k], rest[k + 1]), {}, core.node) if k + 1 < len(rest) else rest[k]
                for k in range(0, len(rest), 2)
            ]
        repl = rest[0]
        if factor != 1.0:
            repl = add("mul", (repl, add("const", (), {"value": factor}, core.node)), {}, core.node)
    top_id = add(mode, (repl, c), {}, core.node)
    chain = []
    i = output
    while i != core.node:
        chain.append(i)
        i = next(j for j in graph.nodes[i].inputs if const_value(graph, j) is None)
    for i in reversed(chain):
        n = graph.nodes[i]
        top_id = add(n.op, tuple(top_id if const_value(graph, j) is None else j for j in n.inputs), dict(n.attrs), i)
    g2 = Graph(tuple(nodes), graph.inputs, (top_id,))
    sub, mapping = g2.subgraph(sorted(g2.ancestors(top_id) | {top_id}), [top_id])
    return sub, mapping[top_id]


def scores(quantized: dict[str, Any], dists: dict[str, Any], mode: str) -> dict[str, float]:
    """Per input, the estimated second-order cost of keeping it continuous in :func:`reassociate` (lower wins).

    Sums: ``TV(p_C) * sum_{i != C} E(X_i - X_i')^2``; products: ``TV(s^2 p_C) / E|C| * sum_{i != C} E(X_i -
    X_i')^2 / E|X_i|^2`` (the relative spread of the other factors), from the quantizers' per-cell second moments.
    Inputs without a closed-form law of known regularity are left out.
    """
    m2: dict[str, float] = {}
    tv: dict[str, float] = {}
    for name, q in quantized.items():
        law = dists.get(name)
        if (
            not isinstance(law, Continuous)
            or q.upstream_w1 > 0
            or q.method not in ("quantile", "meansplit", "geometric")
        ):
            continue
        v = float(np.sum(np.minimum(q.m2, np.inf)))
        if mode == "mul":
            ea = law.mean_abs()
            if not ea > 0:
                continue  # no relative spread (a point mass at 0): left out
            v = v / ea / ea  # two divisions: ea * ea underflows to 0 for ea below ~1e-154
            t = law.scaled_tv() / ea
        else:
            t = law.density_tv()
        if math.isfinite(v) and math.isfinite(t):
            m2[name], tv[name] = v, t
    total = sum(m2.values())
    return {k: tv[k] * max(total - m2[k], 0.0) for k in m2}


@dataclass
class _Pieces:
    """``S = sum_j w_j law(p_j + q_j B)`` with ``B`` a continuous base variable (``C`` or ``1 / C``)."""

    p: np.ndarray
    q: np.ndarray
    w: np.ndarray
    cdf: Any  # vectorised P(B <= x)
    support: tuple[float, float]
    law: Continuous | None  # the law of B when B = C (closed-form partial moments for the tails), else None

    def cdf_at(self, t: np.ndarray) -> np.ndarray:
        """``H(t)`` at the points ``t`` (in blocks of at most ``_BLOCK`` evaluations)."""
        fast = self._cdf_at_location_scale(t)
        if fast is not None:
            return fast
        out = np.empty(t.size)
        step = max(1, _BLOCK // max(self.p.size, 1))
        p, q, w = self.p[:, None], self.q[:, None], self.w
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for s in range(0, t.size, step):
                tt = t[None, s : s + step]
                x = (tt - p) / np.where(q == 0, 1.0, q)
                fx = np.clip(self.cdf(x), 0.0, 1.0)
                v = np.where(q > 0, fx, np.where(q < 0, 1.0 - fx, (p <= tt).astype(float)))
                out[s : s + step] = w @ v
        return np.clip(out, 0.0, 1.0)

    def _cdf_at_location_scale(self, t: np.ndarray) -> np.ndarray | None:
        """:meth:`cdf_at` for ``B = C`` of a location-scale family: ``P(p + q B <= t) = F_0(a t + b)`` for ``q > 0``.

        With ``a = 1 / (q s)``, ``b = -(p + q l) / (q s)`` (``l``, ``s`` the law's location and scale, ``F_0`` its
        standard CDF); for ``q < 0`` the standard survival function at ``a t + b``, and a step at ``p`` for ``q = 0``:
        one fused affine map and one CDF pass per block instead of the generic form's divisions and masks (the
        pieces' CDF values agree to a few ulps, which the callers' rounding slack covers). None where the law's
        CDF is not of that standard form.
        """
        law = self.law
        if law is None or type(law).cdf is not Continuous.cdf:
            return None
        loc, scale = float(getattr(law, "loc", math.nan)), float(getattr(law, "scale", math.nan))
        if not (math.isfinite(loc) and math.isfinite(scale) and scale > 0):
            return None
        out = np.zeros(t.size)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for sel, cdf in ((self.q > 0, law._zcdf), (self.q < 0, law._zsf)):
                if not np.any(sel):
                    continue
                p, q, w = self.p[sel], self.q[sel], self.w[sel]
                a = 1.0 / (q * scale)
                b = -(p + q * loc) * a
                step = max(1, _BLOCK // max(p.size, 1))
                for s0 in range(0, t.size, step):
                    z = np.multiply.outer(a, t[s0 : s0 + step])
                    z += b[:, None]
                    out[s0 : s0 + step] += w @ cdf(z)
            zero = self.q == 0
            if np.any(zero):
                order = np.argsort(self.p[zero])
                cum = np.concatenate([[0.0], np.cumsum(self.w[zero][order])])
                out += cum[np.searchsorted(self.p[zero][order], t, side="right")]
        if not np.all(np.isfinite(out)):
            return None
        return np.clip(out, 0.0, 1.0)

    def hull(self) -> tuple[float, float]:
        """An interval containing the support of ``S`` (infinite ends where ``B`` is unbounded)."""
        lo, hi = self.support
        with np.errstate(invalid="ignore", over="ignore"):
            e1, e2 = self.p + self.q * lo, self.p + self.q * hi
        e1 = np.where(self.q == 0, self.p, e1)
        e2 = np.where(self.q == 0, self.p, e2)
        a, b = np.fmin(e1, e2), np.fmax(e1, e2)
        a = np.where(np.isnan(a), -np.inf, a)
        b = np.where(np.isnan(b), np.inf, b)
        return float(a.min()), float(b.max())

    def tails(self, t0: float, t1: float) -> float:
        """``E_S(t0 - Y)_+ + E_S(Y - t1)_+`` (closed form; ``inf`` where ``B`` is unbounded and not ``C``)."""
        lo, hi = self.hull()
        if lo >= t0 and hi <= t1:
            return 0.0
        law = self.law
        if law is None:
            return math.inf
        p, q, w = self.p, self.q, self.w
        qs = np.where(q == 0, 1.0, q)

        def lower(s: np.ndarray) -> np.ndarray:  # E(s - B)_+
            z = (s - law.loc) / law.scale
            f = law._zcdf(z)
            return np.maximum(s * f - (law.loc * f + law.scale * law._zpm_lo(z)), 0.0)

        def upper(s: np.ndarray) -> np.ndarray:  # E(B - s)_+
            z = (s - law.loc) / law.scale
            sf = law._zsf(z)
            return np.maximum(law.loc * sf + law.scale * law._zpm_hi(z) - s * sf, 0.0)

        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            s0, s1 = (t0 - p) / qs, (t1 - p) / qs
            aq = np.abs(q)
            below = np.where(q > 0, aq * lower(s0), np.where(q < 0, aq * upper(s0), np.maximum(t0 - p, 0.0)))
            above = np.where(q > 0, aq * upper(s1), np.where(q < 0, aq * lower(s1), np.maximum(p - t1, 0.0)))
            # Rounding of the closed forms: absolute error of order eps * (|s| + E|B|) per piece, times |q|.
            slack = 64 * _EPS * aq * (np.abs(s0) + np.abs(s1) + law.mean_abs() + abs(law.loc) + law.scale)
            total = float(w @ (below + above + slack))
        return total if math.isfinite(total) else math.inf


def pieces(op: str, c_side: int, a_atoms: np.ndarray, a_weights: np.ndarray, law: Continuous) -> _Pieces | None:
    """The semi-discrete law ``A'' op C`` as affine pieces of a base variable (None where not supported).

    Args:
        op: The core op.
        c_side: 0 when ``C`` is the first operand, 1 when it is the second.
        a_atoms: Atoms of ``A''``.
        a_weights: Their masses.
        law: The exact law of ``C``.
    """
    a = np.asarray(a_atoms, dtype=float)
    w = np.asarray(a_weights, dtype=float)
    one = np.ones_like(a)
    sup = law.support()
    if op == "add":
        return _Pieces(a, one, w, law.cdf, sup, law)
    if op == "sub":
        if c_side == 1:  # a - C
            return _Pieces(a, -one, w, law.cdf, sup, law)
        return _Pieces(-a, one, w, law.cdf, sup, law)  # C - a
    if op == "mul":
        return _Pieces(np.zeros_like(a), a, w, law.cdf, sup, law)
    if op == "div" and c_side == 1:
        lo, hi = sup
        if not (math.isfinite(lo) and math.isfinite(hi) and lo * hi > 0):
            return None  # 1 / C must be bounded (then S's support is bounded and has no tails to integrate)

        def inv_cdf(r: np.ndarray) -> np.ndarray:  # P(1 / C <= r) for C of one sign
            with np.errstate(divide="ignore", invalid="ignore"):
                f = law.cdf(1.0 / r)
            if lo > 0:  # 1/C > 0: 1/C <= r  <=>  r > 0 and C >= 1/r
                return np.where(r > 0, 1.0 - f, 0.0)
            return np.where(r < 0, 1.0 - f, 1.0)  # 1/C < 0: for r < 0, 1/C <= r <=> C >= 1/r

        return _Pieces(np.zeros_like(a), a, w, inv_cdf, (1.0 / hi, 1.0 / lo), None)
    return None


def w1_to_steps(
    s: _Pieces, atoms: np.ndarray, weights: np.ndarray, tv_h: float, tol: float = 0.0, points: int = GRID_POINTS
) -> tuple[float, float]:
    """An upper bound on ``W1(S, G)`` for the discrete law ``G`` (atoms sorted, distinct), and the slack in it.

    Two bounds on ``int |H - G|`` over ``G``'s range (the tails outside are :meth:`_Pieces.tails`), the smaller
    is kept:

    * monotone bracketing: between grid points ``H(t_k) <= H <= H(t_{k+1})`` (refined where its slack is);
    * interpolation: with ``L`` the linear interpolant of ``H`` on the grid, ``int |H - G| <= int |L - G|``
      (exact, piece by piece) ``+ sum_k int_{I_k} |H - L|``; on an interval of length ``dt`` where the density
      ``h = H'`` varies by ``V_k``, ``|H - L| <= min(t - t_k, t_{k+1} - t) V_k``, so the sum is at most
      ``max_k dt_k^2 / 4 * TV(h)`` (``tv_h`` bounds ``TV(h)``; ``inf`` turns this bound off).

    ``tol`` is a slack small enough to stop refining at (the caller's other terms make it negligible) and
    ``points`` the size of the first grid; neither changes the validity of the bound, only its tightness and cost.

    Returns ``(bound, slack)``: ``slack`` is what the bound adds to the midpoint (or interpolation) estimate.
    """
    g_lo, g_hi = float(atoms[0]), float(atoms[-1])
    h_lo, h_hi = s.hull()
    t0 = max(min(g_lo, h_lo), g_lo - (g_hi - g_lo + 1.0) * 1e3) if math.isfinite(h_lo) else g_lo
    t1 = min(max(g_hi, h_hi), g_hi + (g_hi - g_lo + 1.0) * 1e3) if math.isfinite(h_hi) else g_hi
    if not t1 > t0:  # G one atom and S unbounded: any interval around it (the tails cover the rest)
        pad = 0.5 * max(1.0, abs(t0))
        t0, t1 = t0 - pad, t1 + pad
    tail = s.tails(t0, t1)
    if not math.isfinite(tail):
        return math.inf, math.inf
    cum = np.cumsum(weights)
    n = max(points // 2, 16)
    qs = (np.arange(n) + 0.5) / n
    grid = np.unique(
        np.concatenate([[t0, t1], atoms[np.minimum(np.searchsorted(cum, qs), atoms.size - 1)], np.linspace(t0, t1, n)])
    )
    hv = np.maximum.accumulate(s.cdf_at(grid))  # H is monotone: rounding must not make the bracket inconsistent
    span = t1 - t0
    lin = math.inf
    lin_slack = math.inf
    if math.isfinite(tv_h):
        est = _interpolated(grid, hv, atoms, cum)
        lin_slack = float(np.max(np.diff(grid))) ** 2 / 4 * tv_h * (1 + 1e-9)
        lin = est + lin_slack
    bound, slack, per = _bracket(grid, hv, atoms, cum)
    for _ in range(REFINE_ROUNDS):
        if bound <= lin or slack <= max(0.02 * bound, tol) or lin_slack <= max(0.02 * lin, tol):
            break  # the bracket is tight enough, or the interpolation bound already is
        # Split the grid intervals that hold most of the bracketing slack into 8.
        k = np.argsort(per)[::-1][: max(1, min(per.size, 2 * n // 8))]
        new = (grid[k][:, None] + np.diff(grid)[k][:, None] * (np.arange(1, 8) / 8.0)[None, :]).reshape(-1)
        new_h = s.cdf_at(new)
        grid, idx = np.unique(np.concatenate([grid, new]), return_index=True)
        hv = np.maximum.accumulate(np.concatenate([hv, new_h])[idx])
        bound, slack, per = _bracket(grid, hv, atoms, cum)
    if lin < bound:
        bound, slack = lin, lin_slack
    # Rounding: the CDF values carry absolute errors of a few eps per evaluation, the grid sums a few eps each.
    total = (bound + tail) * (1 + 1e-9) + 1e-12 * span + 64 * _EPS * span
    return total, slack


def _pieces_between(grid: np.ndarray, atoms: np.ndarray, cum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The grid points and ``G``'s atoms inside it (sorted), and ``G`` on each piece ``[p_i, p_{i+1})``."""
    inside = atoms[(atoms > grid[0]) & (atoms < grid[-1])]
    pts = np.unique(np.concatenate([grid, inside]))
    j = np.searchsorted(atoms, pts[:-1], side="right")  # atoms <= left end
    g = np.where(j > 0, cum[np.maximum(j - 1, 0)], 0.0)
    return pts, g


def _interpolated(grid: np.ndarray, hv: np.ndarray, atoms: np.ndarray, cum: np.ndarray) -> float:
    """``int |L - G|`` over the grid's range, exactly (``L`` the linear interpolant of ``hv`` on ``grid``)."""
    pts, g = _pieces_between(grid, atoms, cum)
    lv = np.interp(pts, grid, hv)
    d0, d1 = lv[:-1] - g, lv[1:] - g
    dt = np.diff(pts)
    a0, a1 = np.abs(d0), np.abs(d1)
    same = d0 * d1 >= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        cross = np.where(a0 + a1 > 0, (d0 * d0 + d1 * d1) / (2 * (a0 + a1)), 0.0)
    return float(dt @ np.where(same, 0.5 * (a0 + a1), cross))


def _bracket(grid: np.ndarray, hv: np.ndarray, atoms: np.ndarray, cum: np.ndarray) -> tuple[float, float, np.ndarray]:
    """``sum`` over the pieces between grid points and atoms of ``dt * max(H_{k+1} - G, G - H_k)`` on the grid.

    Returns the bound, its slack over the midpoint estimate and the slack per grid interval.
    """
    pts, g = _pieces_between(grid, atoms, cum)
    dt = np.diff(pts)
    k = np.clip(np.searchsorted(grid, pts[:-1], side="right") - 1, 0, grid.size - 2)
    h0, h1 = hv[k], hv[k + 1]
    upper = np.maximum(h1 - g, g - h0)
    est = np.abs(0.5 * (h0 + h1) - g)
    per = np.bincount(k, weights=dt * (upper - est), minlength=grid.size - 1)
    return float(dt @ upper), float(per.sum()), per


def certify(
    ev: Any, core: Core | AffineCore, kept: dict[int, Any], attr: Terms, bound: float = math.inf
) -> tuple[float, Terms, dict[str, Any]] | None:
    """The semi-discrete bound on ``W1(Y, G_out)`` for the output of ``ev`` (see the module docstring).

    Args:
        ev: The :class:`~opgraph.dcg.engine.Evaluator` after its run.
        core: The output's core (:func:`find_core`).
        kept: The values of the core node and of its two operands (node id -> ``Val``).
        attr: The output's first-order attribution (label -> W1 share), used to split the measured term.
        bound: The bound already in hand (this evaluation's, and any recorded by :func:`shared_ceiling` for the
            same output): the affine certificate stops early where it cannot go below it.

    Returns:
        ``(bound, terms, info)`` or None where the certificate does not apply (or, for the affine form, cannot win).
    """
    if isinstance(core, AffineCore):
        shared = _CEILING.get()
        ceiling = min(bound, shared[0]) if shared is not None else bound
        r = _certify_affine_terms(ev, core, kept, attr, ceiling)
        if shared is not None:  # this output's best bound so far, for its other evaluations
            shared[0] = min(ceiling, r[0] if r is not None else math.inf)
        return r
    if ev.reducer is not None or core.node in ev.compress or not all(i in kept for i in (core.node, *core.operands)):
        return None
    if any(ev.quantized[n.attrs["name"]].upstream_w1 > 0 for n in ev.nodes if n.op == "input"):
        return None
    vals = [kept[i] for i in core.operands]
    if set(vals[0].axes) & set(vals[1].axes) or not (vals[0].axes and vals[1].axes):
        return None
    cv = kept[core.node]
    shape = ev._shape(cv.axes)
    g_atoms, g_w = merge_duplicates(np.broadcast_to(cv.pt, shape).reshape(-1), ev._wbox(cv.axes).reshape(-1))
    best: tuple[float, Terms, dict[str, Any]] | None = None
    sides = (0, 1) if core.op in ("add", "sub", "mul") else (1,)
    tries = [(c_side, m) for c_side in sides for m in (REGROUP_ATOMS, REGROUP_ATOMS_MAX)]
    for c_side, m in tries:
        c_val, a_val = vals[c_side], vals[1 - c_side]
        law = c_val.law
        if not isinstance(law, Continuous) or c_val.wb is None:
            continue
        if m > REGROUP_ATOMS:
            # The larger regrouping only where the smaller one left a second-order term over twice the measured one.
            last = best[2] if best is not None and best[2]["smoothed"] == c_val_label(ev, c_val) else None
            size = math.prod(ev._shape(a_val.axes))
            if last is None or size <= REGROUP_ATOMS or last["second_order"] <= 2 * last["measured_w1"]:
                continue
        a2 = _regrouped(ev, core.operands[1 - c_side], a_val, m)
        smooth = _smoothing(ev, core.op, a2, c_val, law)
        if smooth is None:
            continue
        s = pieces(core.op, c_side, a2.pt, ev.axes[a2.axes[0]].weights, law)
        if s is None:
            continue
        d, slack = w1_to_steps(s, g_atoms, g_w, _density_tv(core.op, s, law))
        if not math.isfinite(d):
            continue
        smooth_total = float(sum(smooth.values()))
        # Rounding of the affine chain after the core: each op is one correctly rounded operation per atom.
        e_abs = float(np.abs(g_atoms) @ g_w)
        rounding = 4 * core.steps * _EPS * (core.alpha * e_abs + 1e-300)
        total = core.alpha * (smooth_total + d) + rounding
        if best is not None and total >= best[0]:
            continue
        a_total = sum(attr.values())
        measured = core.alpha * d + rounding
        terms: Terms = {k: v * core.alpha for k, v in smooth.items()}
        if a_total > 0 and math.isfinite(a_total):
            for k, v in attr.items():
                terms[k] = terms.get(k, 0.0) + measured * v / a_total
        else:
            terms["semi-discrete W1 (measured)"] = measured
        info = {
            "smoothed": c_val_label(ev, c_val),
            "regrouped_atoms": int(a2.pt.size),
            "second_order": core.alpha * smooth_total,
            "measured_w1": core.alpha * d,
            "measured_slack": core.alpha * slack,
        }
        best = (total, terms, info)
    return best


def _density_tv(op: str, s: _Pieces, law: Continuous) -> float:
    """A bound on the total variation of the density of ``S = sum_j w_j law(p_j + q_j B)``.

    The density of ``p + q B`` has total variation ``TV(p_B) / |q|`` and TV is subadditive over the mixture;
    ``TV(p_{1/C}) = TV(s^2 p_C(s))`` (the same function after the substitution ``s = 1 / r``).
    """
    tv_b = law.scaled_tv() if op == "div" else law.density_tv()
    if not math.isfinite(tv_b):
        return math.inf
    aq = np.abs(s.q)
    if np.any(aq == 0):
        return math.inf
    with np.errstate(divide="ignore", over="ignore"):
        total = tv_b * float(s.w @ (1.0 / aq)) * (1 + 1e-9)
    return total if math.isfinite(total) else math.inf


def c_val_label(ev: Any, v: Any) -> str:
    """The label of the input axis of a one-axis value."""
    return str(ev.axes[v.axes[0]].label)


def _regrouped(ev: Any, node_id: int, a_val: Any, m: int = REGROUP_ATOMS) -> Any:
    """``A''``: ``a_val`` regrouped into at most ``m`` atoms, with its second-order bookkeeping.

    Uses the engine's own compression (:meth:`Evaluator._compress`, the same bookkeeping as a planned compression);
    the record it appends to ``ev.compressions`` is removed again (this regrouping is not part of the result).
    """
    size = math.prod(ev._shape(a_val.axes))
    if len(a_val.axes) == 1 and size <= m:
        return a_val  # its nb is the path bound on E|A - A'| (the coupling of the grid)
    size_cap = _coupling_total(ev, a_val)
    key, fresh = node_id + 10**9, node_id + 3 * 10**9
    prev = ev.axes.get(key)
    saved = (ev.compress_atoms, ev.smoothing, len(ev.compressions))
    ev.compress_atoms, ev.smoothing = m, True
    try:
        out = ev._compress(node_id, a_val)
    finally:
        ev.compress_atoms, ev.smoothing = saved[0], saved[1]
        cost = sum(c["w1_cost"] for c in ev.compressions[saved[2] :])
        del ev.compressions[saved[2] :]
        # The compression registers its axis under the node's compressed-axis id: move it to an id of its own
        # and put back whatever the evaluation had there (a planned compression of the same node).
        ax = ev.axes.pop(key, None)
        if prev is not None:
            ev.axes[key] = prev
    if ax is None:
        raise RuntimeError("opgraph.dcg.semidiscrete: the regrouping registered no axis")
    ax.id = fresh
    ev.axes[fresh] = ax
    ev._wbox_memo.pop((fresh,), None)
    out.axes = (fresh,)
    out.der = {fresh: out.der[key]}
    out.nb = {"coupling": size_cap + cost}
    return out


def _coupling_total(ev: Any, v: Any) -> float:
    """A bound on ``E|V - V'|`` under the grid coupling: the smaller of the cellwise and path totals."""
    cw, _ = ev.cellwise(v)
    total = min(float(np.sum(cw)), float(sum(v.nb.values())) if v.nb else math.inf)
    return total if total >= 0 else math.inf


def _smoothing(ev: Any, op: str, a2: Any, c_val: Any, law: Continuous) -> Terms | None:
    """``W1(A op C, A'' op C)`` bound (second order in ``A - A''``), or None where the law lacks the constants.

    The boxes where the second-order form does not apply (unbounded cells, value enclosures through 0) share the
    first-order bound of ``E|A - A''|`` as a whole (``a2.nb``, see :func:`_regrouped`) instead of each taking
    its own cell bound.
    """
    cap = float(sum(a2.nb.values())) if a2.nb else math.inf
    if op in ("add", "sub"):
        tv = law.density_tv()
        return ev._smoothed_term(a2, tv, cap=cap) if math.isfinite(tv) and tv > 0 else None
    if op == "mul":
        t2, k1 = law.scaled_tv(), law.mean_abs()
    else:
        lo, hi = c_val.gint
        if not lo * hi > 0:
            return None
        t2, k1 = law.density_tv(), law.inv_mean_abs()
    if not (math.isfinite(t2) and math.isfinite(k1)):
        return None
    return ev._scaled_term(a2, t2, k1, cap=k1 * cap)


# ---------------------------------------------------------------------------------------------------------------
# Conditionally affine outputs: Y = P + Q * C with C one exact input and P, Q nodes on the other inputs
# ---------------------------------------------------------------------------------------------------------------
#: Largest joint grid of ``(P, Q)`` the affine certificate works on (about 20 arrays of this size are made).
AFFINE_MAX_BOXES = 1 << 21
_PATH_OPS = ("add", "sub", "mul", "div", "neg")


def _affine_path(graph: Graph, c: int, output: int, users: dict[int, tuple[int, ...]]) -> list[int] | None:
    """The chain of single-use ``+ - * / neg`` nodes from input ``c`` to ``output`` (None when there is none).

    Every node on it has one user (the next node), so ``c`` reaches the output along this chain only and every
    other operand of the chain is free of ``c``; ``/`` must have the chain as its numerator.
    """
    path, i = [], c
    while i != output:
        us = users.get(i, ())
        if len(us) != 1:
            return None
        u = us[0]
        n = graph.nodes[u]
        if n.op not in _PATH_OPS or sum(j == i for j in n.inputs) != 1:
            return None
        if n.op == "neg" and len(n.inputs) != 1:
            return None
        if n.op != "neg" and len(n.inputs) != 2:
            return None
        if n.op == "div" and n.inputs[0] != i:
            return None
        path.append(u)
        i = u
    return path


def affine_rewrite(graph: Graph, output: int, c: int, shift: float = 0.0) -> tuple[Graph, int, dict[str, int]] | None:
    """``output`` rewritten as ``P + Q * C`` (or ``Q * C``), ``C`` the input node ``c`` used once on an affine chain.

    With ``shift = c0 != 0`` the form is centred: ``Y(c0) + Q * (C - c0)`` (``Y(c0) = P + c0 Q`` computed by the
    chain itself with ``C`` replaced by ``c0``).

    Along the chain from ``C`` to the output (:func:`_affine_path`) the value is ``p + q C`` with ``p``, ``q``
    nodes free of ``C``: ``+ z`` adds ``z`` to ``p``; ``- z`` / ``z -`` likewise with signs; ``* z`` and ``/ z``
    scale both. The new nodes compute ``P`` and ``Q`` from the same operands; the value changes only by
    floating-point reassociation.

    Returns:
        ``(graph, output id, {"p": id or -1, "q": id, "c": id, "m": id of Q * C})`` restricted to the output, or
        None where ``c`` has no affine chain or the output is already ``p + C`` / ``C`` scaled by constants.
    """
    users = graph.users()
    path = _affine_path(graph, c, output, users)
    if not path:
        return None
    nodes = list(graph.nodes)

    def add(op: str, inputs: tuple[int, ...], like: int, attrs: dict[str, Any] | None = None) -> int:
        nodes.append(Node(len(nodes), op, inputs, attrs or {}, dict(graph.nodes[like].meta)))
        return len(nodes) - 1

    def const(v: float, like: int) -> int:
        return add("const", (), like, {"value": v})

    p: int | None = None  # None: 0
    q: int | None = None  # None: 1
    prev = c
    for u in path:
        n = graph.nodes[u]
        if n.op == "neg":
            p = None if p is None else add("neg", (p,), u)
            q = const(-1.0, u) if q is None else add("neg", (q,), u)
            prev = u
            continue
        k = 0 if n.inputs[0] == prev else 1
        z = n.inputs[1 - k]
        if n.op == "add":
            p = z if p is None else add("add", (p, z), u)
        elif n.op == "sub" and k == 0:  # chain - z
            p = add("neg", (z,), u) if p is None else add("sub", (p, z), u)
        elif n.op == "sub":  # z - chain
            p = z if p is None else add("sub", (z, p), u)
            q = const(-1.0, u) if q is None else add("neg", (q,), u)
        elif n.op == "mul":
            p = None if p is None else add("mul", (p, z), u)
            q = z if q is None else add("mul", (q, z), u)
        else:  # div, chain / z
            p = None if p is None else add("div", (p, z), u)
            q = add("div", (const(1.0, u), z), u) if q is None else add("div", (q, z), u)
        prev = u
    if q is None or const_value(Graph(tuple(nodes), graph.inputs, ()), q) is not None:
        return None  # C enters with a constant factor: the sum / product certificate already covers it
    if shift != 0.0:
        # Centred: Y = Y(c0) + Q (C - c0), Y(c0) the chain itself with C replaced by the constant c0 (not P + c0 Q,
        # whose enclosures would carry the cancellation between P and c0 Q); the constants of C - c0 are smaller.
        cur = const(shift, output)
        prev = c
        for u in path:
            un = graph.nodes[u]
            cur = add(un.op, tuple(cur if j == prev else j for j in un.inputs), u, dict(un.attrs))
            prev = u
        p = cur
        m = add("mul", (q, add("sub", (c, const(shift, output)), output)), output)
    else:
        m = add("mul", (q, c), output)
    top = m if p is None else add("add", (p, m), output)
    g2 = Graph(tuple(nodes), graph.inputs, (top,))
    keep = sorted(g2.ancestors(top) | {top})
    sub, mapping = g2.subgraph(keep, [top])
    ids = {"p": mapping[p] if p is not None else -1, "q": mapping[q], "c": mapping[c], "m": mapping[m]}
    return sub, mapping[top], ids


def affine_candidates(graph: Graph, output: int, dists: dict[str, Any], rules: dict[str, Any]) -> list[int]:
    """Input nodes with an affine chain to ``output`` and a law with the constants the certificate needs.

    Ordered by the spread of ``Y`` they cause at the other inputs' medians (:func:`input_spreads`; the input whose
    spread dominates smooths most).
    """
    users = graph.users()
    spread = input_spreads(graph, output, dists, rules)
    out: list[tuple[float, int]] = []
    for i, n in enumerate(graph.nodes):
        if n.op != "input":
            continue
        law = dists.get(n.attrs["name"])
        if not isinstance(law, Continuous) or not math.isfinite(_tv_sf(law)):
            continue
        if not all(math.isfinite(x) for x in (law.density_tv(), law.scaled_tv(), law.mean_abs())):
            continue
        if not _affine_path(graph, i, output, users):
            continue
        out.append((spread.get(n.attrs["name"], 0.0), i))
    out.sort(key=lambda t: -t[0])
    return [i for _, i in out]


def input_spreads(graph: Graph, output: int, dists: dict[str, Any], rules: dict[str, Any]) -> dict[str, float]:
    """Per input, ``|Y(x_i = q84) - Y(x_i = q16)| / 2`` at the other inputs' medians (a heuristic; {} on failure)."""
    from opgraph.dcg.engine import run_points

    names = [n.attrs["name"] for n in graph.nodes if n.op == "input"]
    try:
        sub, _ = graph.subgraph(sorted(graph.ancestors(output) | {output}), [output])
        k = len(names)
        pts = {}
        for j, name in enumerate(names):
            d = dists[name]
            col = np.full(2 * k, float(np.asarray(d.ppf(0.5))))
            col[2 * j : 2 * j + 2] = np.asarray(d.ppf(np.array([0.158655, 0.841345])), dtype=float)
            pts[name] = col
        y = run_points(sub, pts, rules)
        with np.errstate(all="ignore"):
            out = {name: abs(float(y[2 * j + 1] - y[2 * j])) / 2 for j, name in enumerate(names)}
    except Exception:  # noqa: BLE001 - a heuristic only
        return {}
    return {key: (v if math.isfinite(v) else math.inf) for key, v in out.items()}


def affine_pays(spread: dict[str, float], sizes: dict[str, int], c_name: str) -> bool:
    """Whether the second-order form can win: the other inputs' cell errors below a few times ``C``'s spread.

    A piece's second-order value beats its first-order one only where ``|dP|`` is below about ``|q| / TV(p_C)``,
    a few times the spread of ``q C``; the cells' first-order error of ``P`` is about ``sum_i 0.87 spread_i / n_i``
    (a Uniform cell of ``n`` atoms: ``E|X - X'| = width / (4 n) = 0.87 std / n``). A heuristic that only skips work:
    where it says no, the rewritten graph is not evaluated (the bound is whatever the other routes give).
    """
    if not spread or c_name not in spread:
        return True
    others = sum(0.87 * v / max(sizes.get(key, 1), 1) for key, v in spread.items() if key != c_name)
    return others <= 3.0 * spread[c_name]


def _tv_sf(law: Any) -> float:
    """Total variation of ``s p(s)`` (``p`` the density of ``law``; ``inf`` where not known in closed form).

    Uniform ``[l, h]``: the end jumps ``|l|, |h|`` over ``h - l`` and the rise 1 inside. Normal: ``s p(s)`` has
    one minimum and one maximum, at the roots ``(mu -+ sqrt(mu^2 + 4 sigma^2)) / 2`` of ``s^2 - mu s - sigma^2``,
    and vanishes at both ends. LogNormal: ``s p(s) = phi((ln s - mu) / sigma) / sigma`` (one peak). Gamma:
    ``s^k e^{-s/theta} / (Gamma(k) theta^k)``, peak ``k^k e^{-k} / Gamma(k)`` at ``k theta``. Beta ``b > 1``: one
    peak at ``a / (a + b - 1)``; ``b = 1``: rises to ``a`` at 1 then jumps to 0.
    """
    from opgraph.dcg import distributions as d

    slack = 1 + 1e-9
    if isinstance(law, d.Uniform):
        lo, hi = law.loc, law.loc + law.scale
        return ((abs(lo) + abs(hi)) / law.scale + 1.0) * slack
    if isinstance(law, d.Normal):
        mu, sg = law.loc, law.scale
        r = math.sqrt(mu * mu + 4 * sg * sg)
        total = 0.0
        for s0 in ((mu - r) / 2, (mu + r) / 2):
            total += 2 * abs(s0) * math.exp(-0.5 * ((s0 - mu) / sg) ** 2) / (sg * math.sqrt(2 * math.pi))
        return total * slack
    if isinstance(law, d.LogNormal):
        return 2.0 / (law.sigma * math.sqrt(2 * math.pi)) * slack
    if isinstance(law, d.Gamma):
        k = law.k
        return 2.0 * math.exp(k * math.log(k) - k - math.lgamma(k)) * slack
    if isinstance(law, d.Beta):
        a, b = law.a, law.b
        if b < 1:
            return math.inf
        if b == 1:
            return 2.0 * a * slack
        m = a / (a + b - 1)
        logf = a * math.log(m) + (b - 1) * math.log1p(-m) - float(d.sc.betaln(a, b))
        return 2.0 * math.exp(logf) * slack
    return math.inf


def _centred_constants(law: Continuous, c0: float) -> tuple[float, float, float, float]:
    """``TV(p)``, ``TV((s - c0) p(s))``, ``TV((s - c0)^2 p(s))`` and ``E|C - c0|`` for ``C ~ law`` (``p`` its density).

    Normal and Uniform are location families: the shifted law's closed forms are exact. Otherwise, by the
    subadditivity of TV, ``TV((s - c) p) <= TV(s p) + |c| TV(p)`` and ``TV((s - c)^2 p) <= TV(s^2 p) + 2 |c| TV(s p)
    + c^2 TV(p)``. ``E|C - c0| = E[C] - c0 - 2 (E[C; C <= c0] - c0 P(C <= c0))`` (closed-form partial moment).
    """
    from opgraph.dcg import distributions as d

    tv0 = law.density_tv()
    if c0 == 0.0:
        return tv0, _tv_sf(law), law.scaled_tv(), law.mean_abs()
    if isinstance(law, d.Normal):
        sh: Continuous = d.Normal(law.loc - c0, law.scale)
        tv1, tv2 = _tv_sf(sh), sh.scaled_tv()
    elif isinstance(law, d.Uniform):
        sh = d.Uniform(law.loc - c0, law.loc + law.scale - c0)
        tv1, tv2 = _tv_sf(sh), sh.scaled_tv()
    else:
        a, b = _tv_sf(law), law.scaled_tv()
        tv1 = (a + abs(c0) * tv0) * (1 + 1e-12)
        tv2 = (b + 2 * abs(c0) * a + c0 * c0 * tv0) * (1 + 1e-12)
    f0 = float(law.cdf(c0))
    low = float(law.partial_moment(c0)) - c0 * f0  # E[C - c0; C <= c0] <= 0
    e = (law.mean() - c0) - 2 * low
    e = abs(e) * (1 + 1e-9) + 64 * _EPS * (abs(c0) + law.mean_abs())
    return tv0, tv1, tv2, e if math.isfinite(e) else math.inf


@dataclass(frozen=True)
class AffineCore:
    """The output is ``P + Q * C`` with ``C`` an exact input used once and ``P``, ``Q`` nodes (not constants).

    Attributes:
        node: The output node ``P + M``.
        p: The id of ``P``.
        q: The id of ``Q``.
        c: The id of the input ``C``.
        m: The id of ``M = Q * C`` (or ``Q * (C - shift)``).
        shift: ``c0`` of the centred form ``P + Q * (C - c0)`` (0: not centred).
    """

    node: int
    p: int
    q: int
    c: int
    m: int
    shift: float = 0.0
    op: str = "affine"

    @property
    def keep(self) -> set[int]:
        """The node ids whose values the certificate reads."""
        return {i for i in (self.node, self.p, self.q, self.c) if i >= 0}

    @property
    def operands(self) -> tuple[int, ...]:
        """The kept nodes besides the output (the engine keeps ``{node, *operands}``)."""
        return tuple(sorted(self.keep - {self.node}))


def find_affine_core(graph: Graph, output: int) -> AffineCore | None:
    """The :class:`AffineCore` of an output ``P + Q * C`` (either operand order), or None."""
    n = graph.nodes[output]
    if n.op != "add" or len(n.inputs) != 2 or n.inputs[0] == n.inputs[1]:
        return None
    users = graph.users()
    for k in (0, 1):
        m, p = n.inputs[k], n.inputs[1 - k]
        mn = graph.nodes[m]
        if mn.op != "mul" or len(mn.inputs) != 2 or len(users.get(m, ())) != 1 or const_value(graph, p) is not None:
            continue
        if graph.nodes[p].op == "input":
            return None  # ``C' + M`` with an input ``C'``: the sum certificate of :class:`Core` applies as before
        for j in (0, 1):
            c, q = mn.inputs[j], mn.inputs[1 - j]
            shift = 0.0
            cn = graph.nodes[c]
            if cn.op == "sub" and len(cn.inputs) == 2 and len(users.get(c, ())) == 1:
                v = const_value(graph, cn.inputs[1])
                if v is not None and math.isfinite(v):
                    c, shift = cn.inputs[0], v
            if graph.nodes[c].op == "input" and len(users.get(c, ())) == 1 and const_value(graph, q) is None and q != c:
                return AffineCore(output, p, q, c, m, shift)
    return None


def affine_alternative(
    graph: Graph, output: int, dists: dict[str, Any], rules: dict[str, Any], sizes: dict[str, int] | None = None
) -> Any:
    """``output`` rewritten as ``P + Q * C`` for the best candidate input (:func:`affine_rewrite`), or None.

    The form is centred at ``C``'s mean (``(P + c0 Q) + Q (C - c0)``): the certificate's constants are those of
    ``C - c0``. None where the output already has the centred form, where no input qualifies, or where the
    rewrite leaves ``P`` absent, or where the output is ``A op C`` with an input operand (the certificate of
    :class:`Core` applies to it as it is); also where ``sizes`` (atoms per input name) are given and :func:`affine_pays`
    says the second-order form cannot win (the rewritten graph would be evaluated for nothing).
    """
    core = find_affine_core(graph, output)
    if core is not None and core.shift != 0.0:
        return None
    plain = plain_core(graph, output) if core is None else None
    if isinstance(plain, Core) and any(graph.nodes[i].op == "input" for i in plain.operands):
        return None  # ``A op C`` with an input operand: the sum / product / quotient certificate applies as it is
    for c in affine_candidates(graph, output, dists, rules)[:1]:
        if sizes is not None and not affine_pays(
            input_spreads(graph, output, dists, rules), sizes, graph.nodes[c].attrs["name"]
        ):
            return None
        re = affine_rewrite(graph, output, c, float(dists[graph.nodes[c].attrs["name"]].mean()))
        if re is not None and re[2]["p"] >= 0:
            return re[0], re[1]
    return None


def _certify_affine_terms(ev: Any, core: AffineCore, kept: dict[int, Any], attr: Terms, ceiling: float) -> Any:
    """:func:`certify_affine` as ``(bound, terms, info)`` (the measured term split like ``attr``)."""
    best = certify_affine(ev, core, kept, ceiling=ceiling)
    if best is None:
        return None
    total, info = best
    split = info.pop("split", {})
    s_total = sum(split.values())
    if not (s_total > 0 and math.isfinite(s_total)):
        split, s_total = attr, sum(attr.values())
    terms: Terms = {}
    if s_total > 0 and math.isfinite(s_total):
        for k, v in split.items():
            terms[k] = terms.get(k, 0.0) + info["second_order"] * v / s_total
    else:
        terms[f"semi-discrete regrouping of (P, Q) given {info['smoothed']}"] = info["second_order"]
    a_total = sum(attr.values())
    if a_total > 0 and math.isfinite(a_total):
        for k, v in attr.items():
            terms[k] = terms.get(k, 0.0) + info["measured_w1"] * v / a_total
    else:
        terms["semi-discrete W1 (measured)"] = info["measured_w1"]
    return total, terms, info


def _on(ev: Any, arr: Any, axes: tuple[int, ...], into: tuple[int, ...]) -> np.ndarray:
    """A per-box array on ``axes`` as an array on the grid ``into`` (a superset; broadcast, not weighted)."""
    arr = np.asarray(arr, dtype=float)
    if arr.ndim == 0 or not axes:
        return np.broadcast_to(arr, ev._shape(into))
    arr = np.broadcast_to(arr, ev._shape(axes))
    perm = sorted(range(len(axes)), key=lambda i: into.index(axes[i]))
    arr = np.transpose(arr, perm)
    return np.broadcast_to(ev._expand(arr, [axes[i] for i in perm], into), ev._shape(into))


def _box_stats(ev: Any, v: Any, into: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Per box of the grid ``into``: computed value, ``E|V - V'|``, ``|E[V - V']|``, ``E[(V - V')^2]``, enclosure.

    The expectations are over the box (mass included); ``V`` depends on its own axes only, so on a box of the
    finer grid ``into`` they are the box's own values times the mass of the other axes' cells.
    """
    from opgraph.dcg.engine import _cell_enclosure

    wv = ev._wbox(v.axes)
    w_into = ev._wbox(into)
    cw, _ = ev.cellwise(v)
    bias, m2 = ev.second_moments(v)
    lo, hi = _cell_enclosure(ev, v)
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(wv > 0, 1.0 / np.where(wv > 0, wv, 1.0), 0.0)
    scale = [_on(ev, x * inv, v.axes, into) * w_into for x in (np.broadcast_to(cw, wv.shape), bias, m2)]
    return (
        _on(ev, v.pt, v.axes, into).reshape(-1),
        *(np.where(np.isnan(s), np.inf, s).reshape(-1) for s in scale),
        _on(ev, lo, v.axes, into).reshape(-1),
        _on(ev, hi, v.axes, into).reshape(-1),
    )


def _piece_moments(
    rg: Any, w: np.ndarray, pt: np.ndarray, cw: np.ndarray, bias: np.ndarray, m2: np.ndarray, m: int
) -> tuple[np.ndarray, ...]:
    """Group atoms and per-piece moments of ``V - V''`` for the affine certificate.

    Returns the group atoms (mass-weighted means of ``pt``) and, per piece, ``E|V - V''|``, the box part of
    ``|E[V - V'']|``, the signed move ``mass (v - a)`` and ``E[(V - V'')^2]``.
    ``V -> V'`` through the boxes (a box's mass is split between groups independently of the exact value in the
    box, so a piece takes the box's share of each expectation), ``V' -> V''`` the move of the computed value to
    the group's atom: ``E[(V - a)^2; piece] = share (E[(V - v)^2; box] + 2 (v - a) E[V - v; box]) + mass (v - a)^2``.
    """
    e, g, pm = rg.piece_elem, rg.piece_group, rg.piece_mass
    share = pm / np.maximum(w[e], 1e-300)
    mass = np.bincount(g, weights=pm, minlength=m)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        atom = np.bincount(g, weights=pm * pt[e], minlength=m) / np.maximum(mass, 1e-300)
        dv = pt[e] - atom[g]
        rnd = 64 * _EPS * pm * np.abs(pt[e])  # rounding of the atoms' sums and of the computed values
        first = (share * cw[e] + pm * np.abs(dv)) * (1 + 1e-12) + rnd
        box_bias = share * bias[e] + rnd
        m2p = (share * (m2[e] + 2 * np.abs(dv) * bias[e]) + pm * dv * dv) * (1 + 1e-12) + rnd * rnd / np.maximum(
            pm, 1e-300
        )
    fix = [np.where(np.isnan(x), np.inf, x) for x in (first, box_bias, m2p)]
    return atom, fix[0], fix[1], pm * dv, fix[2]


#: Group counts tried for the joint regrouping of ``(P, Q)`` (each capped at the number of boxes; a grid with no
#: more boxes than groups is not regrouped at all) and the largest one (the measured term's work grows with it).
AFFINE_GROUPS = (256, 1024, 4096, 16384)
#: The most groups whose atoms and Taylor remainders :func:`certify_affine` lists in its ``info`` (keeps saved
#: results small).
GROUPS_LISTED = 1024
#: ``groups x grid points`` of the measured term's first grid (its grid shrinks, down to 512 points, above it).
_MEASURE_WORK = 1 << 26


def joint_regroup(p: np.ndarray, q: np.ndarray, w: np.ndarray, m: int, bands: int) -> Any:
    """An equal-mass regrouping of the boxes ``(p, q)`` into ``m`` groups, ``bands`` bands in ``p`` by ``m / bands`` in ``q``.

    The boxes are cut into ``bands`` bands of about equal mass by their ``p`` (a box stays whole), ordered by ``q``
    within each band, and the resulting order is cut into ``m`` equal-mass groups (:func:`regroup`; a box may be
    split between neighbouring groups). ``bands = m`` is the order by ``p`` alone, ``bands = 1`` by ``q`` alone;
    between them the groups are small in both coordinates, so both ``P - p_g`` and ``Q - q_g`` are small. Any
    partition into groups gives a valid certificate (:func:`certify_affine` computes the atoms and moments of the
    groups it is given); this only decides how small the regrouping terms are.
    """
    n = p.size
    if bands <= 1:
        order = np.lexsort((p, q))
    else:
        by_p = np.lexsort((q, p))
        cum = np.cumsum(w[by_p])
        mid = (cum - 0.5 * w[by_p]) / max(float(cum[-1]), 1e-300)
        band = np.empty(n, dtype=np.int64)
        band[by_p] = np.minimum((mid * bands).astype(np.int64), bands - 1)
        order = np.lexsort((p, q, band)) if bands < m else by_p
    rank = np.empty(n)
    rank[order] = np.arange(n, dtype=float)
    return regroup(rank, w, m)


def _affine_second_order(
    rg: Any, w: np.ndarray, ps: tuple[np.ndarray, ...], qs: tuple[np.ndarray, ...], consts: tuple[float, ...]
) -> dict[str, Any]:
    """``sum_g min(F_g, T_g)`` of :func:`certify_affine` for one grouping, with the group atoms and counts."""
    k_pp, k_pq, k_qq, e_c = consts
    m = rg.weights.size
    p_at, p_first, p_box, p_move, p_m2 = _piece_moments(rg, w, *ps[:4], m)
    q_at, q_first, q_box, q_move, q_m2 = _piece_moments(rg, w, *qs[:4], m)
    e, g = rg.piece_elem, rg.piece_group
    # Per piece, the smallest |q| on the Taylor segment (Q's box enclosure and the group's atom).
    plo, phi_ = np.minimum(qs[4][e], q_at[g]), np.maximum(qs[5][e], q_at[g])
    mp = np.where(plo > 0, plo, np.where(phi_ < 0, -phi_, 0.0))
    first_p = p_first + e_c * q_first
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        quad = k_pp * p_m2 + 2 * k_pq * np.sqrt(p_m2 * q_m2) + k_qq * q_m2
        rem = np.where(mp > 0, quad / (2 * np.where(mp > 0, mp, 1.0)), np.inf)
        lin = p_box + e_c * q_box
        good = lin + rem < first_p
        first = np.bincount(g, weights=first_p, minlength=m)
        # Good pieces: Taylor at the group's atom (the moves' linear parts cancel within the group up to their
        # sum); the other pieces of the group: the Lipschitz (first-order) bound.
        second = (
            np.bincount(g, weights=np.where(good, lin + rem, first_p), minlength=m)
            + np.abs(np.bincount(g, weights=np.where(good, p_move, 0.0), minlength=m))
            + e_c * np.abs(np.bincount(g, weights=np.where(good, q_move, 0.0), minlength=m))
        )
        remainder = np.bincount(g, weights=np.where(good, rem, 0.0), minlength=m)
    first = np.where(np.isnan(first), np.inf, first)
    second = np.where(np.isnan(second), np.inf, second)
    t2 = float(np.sum(np.minimum(first, second))) * (1 + 1e-12)
    return {
        "t2": t2 if math.isfinite(t2) else math.inf,
        "p_at": p_at,
        "q_at": q_at,
        "mass": rg.weights,
        "remainder": remainder,
        "m": m,
        "groups": int(np.sum(second < first)),
        "pieces": int(np.sum(good)),
    }


def affine_floor(ps: tuple[np.ndarray, ...], qs: tuple[np.ndarray, ...], consts: tuple[float, ...]) -> float:
    """A lower bound on what :func:`certify_affine` can return, from the boxes alone (no regrouping).

    Every piece of a box costs at least its share of ``min(E|dP| + k1 E|dQ|, |E dP| + k1 |E dQ| + (K_pp E[dP^2] +
    K_qq E[dQ^2]) / (2 max|q|))`` over the box (the moves to the group atoms and the cross term only add,
    ``m_piece`` is at most the largest ``|q|`` of the box's enclosure, and the measured term is >= 0); the shares
    of a box sum to 1, so the
    sum over boxes is a floor for every grouping. Costs one pass over the boxes: the certificate is skipped where
    this floor already reaches the bound in hand.
    """
    k_pp, _, k_qq, e_c = consts
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        first = ps[1] + e_c * qs[1]
        qmax = np.maximum(np.abs(qs[4]), np.abs(qs[5]))
        quad = ps[2] + e_c * qs[2] + (k_pp * ps[3] + k_qq * qs[3]) / (2 * qmax)
        v = np.fmin(first, np.where(qmax > 0, quad, np.inf))
    v = np.where(np.isnan(v), 0.0, v)
    return float(np.sum(v)) * (1 - 1e-9)


def affine_box_wins(ps: tuple[np.ndarray, ...], qs: tuple[np.ndarray, ...], consts: tuple[float, ...]) -> bool:
    """Whether some box's own second-order value (no regrouping move) is below its first-order one.

    A heuristic that only skips work: a piece of a group adds its move to both sides, so where no box wins
    without moves the certificate returns nothing in practice (wing weight and borehole at 4 atoms per input).
    """
    k_pp, k_pq, k_qq, e_c = consts
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        qmin = np.where(qs[4] > 0, qs[4], np.where(qs[5] < 0, -qs[5], 0.0))
        quad = k_pp * ps[3] + 2 * k_pq * np.sqrt(ps[3] * qs[3]) + k_qq * qs[3]
        second = ps[2] + e_c * qs[2] + np.where(qmin > 0, quad / (2 * np.where(qmin > 0, qmin, 1.0)), np.inf)
        return bool(np.any(second < ps[1] + e_c * qs[1]))


def certify_affine(
    ev: Any, core: AffineCore, kept: dict[int, Any], m_atoms: int | None = None, ceiling: float = math.inf
) -> Any:
    """The semi-discrete bound on ``W1(Y, G)`` for ``Y = P + Q (C - c0)`` (``docs/dcg.md``, "Conditionally affine").

    ``(P, Q)`` is regrouped jointly into equal-mass groups (:func:`joint_regroup`; atoms at the groups' mean
    computed values ``(p_g, q_g)``), ``S = sum_g w_g law(p_g + q_g (C - c0))`` and::

        W1(Y, G) <= sum_g min(F_g, T_g) + W1(S, G) (computed),
        F_g = E[|dP| + k1 |dQ|; g],
        T_g = E[|dP| + k1 |dQ|; bad pieces] + |E[dP; good]| + k1 |E[dQ; good]|
              + sum_{good pieces} (K_pp E[dP^2] + 2 K_pq sqrt(E[dP^2] E[dQ^2]) + K_qq E[dQ^2]) / (2 m_piece),

    with ``k1 = E|C - c0|``, ``K_pp = TV(p_C)``, ``K_pq = TV((s - c0) p_C(s))``, ``K_qq = TV((s - c0)^2 p_C(s))``
    and ``m_piece`` the smallest ``|q|`` over the piece's ``Q`` enclosure and the atom (a piece is good where its
    own second-order value is below its first-order one; enclosures through 0 are bad).

    The groupings tried are :data:`AFFINE_GROUPS` groups (capped at the number of boxes; ``m_atoms`` fixes one
    count) times a few band counts; the one with the smallest ``sum_g min(F_g, T_g)`` (cheap) gets the measured
    term (the expensive part). Since the group count follows the grid up to its cap, and the whole grid is used
    where it has no more boxes than that, the bound does not grow with the atoms as a fixed cap made it.

    Args:
        ev: The evaluator after its run.
        core: The output's :class:`AffineCore`.
        kept: The kept values (node id -> ``Val``).
        m_atoms: One group count instead of :data:`AFFINE_GROUPS`.
        ceiling: The bound already in hand: the work stops (None) as soon as a lower bound of this certificate
            (:func:`affine_floor`, then the second-order term) reaches it.

    Returns:
        ``(bound, info)`` or None where the certificate does not apply or cannot beat ``ceiling``. Where the
        chosen grouping has at most :data:`GROUPS_LISTED` groups, ``info["second_order_by_group"]`` lists per
        group its atoms ``p`` and ``q``, its ``mass`` and its Taylor ``remainder``: the sum over its good pieces
        of ``(K_pp E[dP^2] + 2 K_pq sqrt(E[dP^2] E[dQ^2]) + K_qq E[dQ^2]) / (2 m_piece)`` (0 where none is good;
        arrays, in group order).
    """
    if ev.reducer is not None or core.node in ev.compress or not all(i in kept for i in core.keep):
        return None
    if any(ev.quantized[n.attrs["name"]].upstream_w1 > 0 for n in ev.nodes if n.op == "input"):
        return None
    c_val, q_val = kept[core.c], kept[core.q]
    p_val = kept[core.p] if core.p >= 0 else None
    law = c_val.law
    if not isinstance(law, Continuous) or len(c_val.axes) != 1:
        return None
    c0 = core.shift
    consts = _centred_constants(law, c0)
    if not all(math.isfinite(x) for x in consts):
        return None
    into: tuple[int, ...] = tuple(q_val.axes)
    if p_val is not None:
        into = into + tuple(a for a in p_val.axes if a not in into)
    if not into or c_val.axes[0] in into or math.prod(ev._shape(into)) > AFFINE_MAX_BOXES:
        return None
    w = ev._wbox(into).reshape(-1)
    qs = _box_stats(ev, q_val, into)
    if p_val is not None:
        ps = _box_stats(ev, p_val, into)
    else:
        z = np.zeros(w.size)
        ps = (z, z, z, z, z, z)
    floor = affine_floor(ps, qs, consts)
    if not floor < ceiling or not affine_box_wins(ps, qs, consts):
        return None
    key_p = ps[0] + qs[0] * (law.mean() - c0)
    n_box = w.size
    counts = sorted({min(m, n_box) for m in ((m_atoms,) if m_atoms else AFFINE_GROUPS)})
    best: dict[str, Any] | None = None
    for m in counts:
        if m >= n_box:
            tries = [regroup(key_p, w, m)]  # every box its own group
        else:
            bands = sorted({max(1, min(m, round(m**f))) for f in (0.0, 0.25, 0.5, 0.75, 1.0)})
            tries = [joint_regroup(key_p, qs[0], w, m, b) for b in bands]
        for rg in tries:
            cand = _affine_second_order(rg, w, ps, qs, consts)
            if best is None or cand["t2"] < best["t2"]:
                best = cand
        if best is not None and m < counts[-1] and best["t2"] <= 1.05 * floor:
            break  # near the floor already: more groups cannot pay for the measured term's extra work
    if best is None or not math.isfinite(best["t2"]) or best["pieces"] == 0:
        return None  # no piece where the second-order form wins: at best the first-order total (not worth W1(S, G))
    t2 = best["t2"]
    if not t2 < ceiling:
        return None
    cv = kept[core.node]
    g_atoms, g_w = merge_duplicates(
        np.broadcast_to(cv.pt, ev._shape(cv.axes)).reshape(-1), ev._wbox(cv.axes).reshape(-1)
    )
    p_at, q_at = best["p_at"], best["q_at"]
    s = _Pieces(p_at - q_at * c0, q_at, best["mass"], law.cdf, law.support(), law)  # p + q (C - c0)
    # The grid of the measured term shrinks as the groups grow (its work is groups x points), and its refinement
    # stops once its slack is below 2 % of the second-order term.
    points = max(512, min(GRID_POINTS, _MEASURE_WORK // max(int(best["m"]), 1)))
    d, slack = w1_to_steps(s, g_atoms, g_w, _density_tv("add", s, law), tol=0.02 * t2, points=points)
    if not math.isfinite(d):
        return None
    info = {
        "smoothed": c_val_label(ev, c_val),
        "form": "P + Q * C" if p_val is not None else "Q * C",
        "regrouped_atoms": int(best["m"]),
        "boxes": int(n_box),
        "second_order": t2,
        "second_order_floor": floor,
        "second_order_groups": best["groups"],
        "second_order_pieces": best["pieces"],
        "measured_w1": d,
        "measured_slack": slack,
    }
    if best["m"] <= GROUPS_LISTED:
        info["second_order_by_group"] = {"p": p_at, "q": q_at, "mass": best["mass"], "remainder": best["remainder"]}
    # The second-order term is split over the inputs like the first-order attribution of P and Q.
    split: Terms = {}
    for v, k in ((p_val, 1.0), (q_val, consts[3])):
        if v is not None and v.axes:
            for label, x in ev.cellwise(v)[1].items():
                split[label] = split.get(label, 0.0) + k * x
    info["split"] = split
    return t2 + d, info
