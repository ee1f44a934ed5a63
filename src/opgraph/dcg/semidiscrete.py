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
from dataclasses import dataclass
from typing import Any

import numpy as np

from opgraph.dcg.distributions import Continuous
from opgraph.dcg.regroup import merge_duplicates
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


def _const(graph: Graph, i: int) -> float | None:
    n = graph.nodes[i]
    if n.op != "const":
        return None
    v = np.asarray(n.attrs["value"], dtype=float)
    return float(v) if v.size == 1 else None


def find_core(graph: Graph, output: int) -> Core | None:
    """The core node of ``output`` (see :class:`Core`), or None when the output has no such form."""
    alpha, steps, i = 1.0, 0, output
    for _ in range(len(graph.nodes)):
        n = graph.nodes[i]
        if n.op == "neg" and len(n.inputs) == 1:
            i, steps = n.inputs[0], steps + 1
            continue
        if n.op in _AFFINE and len(n.inputs) == 2:
            cs = [_const(graph, j) for j in n.inputs]
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
            cs = [_const(graph, j) for j in n.inputs]
            if n.op == "div" and (cs[1] in (None, 0.0) or cs[0] is not None):
                leaves.append(i)
                continue
            for j in n.inputs:
                v = _const(graph, j)
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
    core = find_core(graph, output)
    if core is None or core.op != mode:
        return None
    users = graph.users()
    leaves, parent, factor = _tree(graph, core.node, mode, users)
    cands = [
        i
        for i in leaves
        if graph.nodes[i].op == "input"
        and len(users.get(i, ())) == 1
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
        cs = [_const(graph, j) for j in pn.inputs]
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
        i = next(j for j in graph.nodes[i].inputs if _const(graph, j) is None)
    for i in reversed(chain):
        n = graph.nodes[i]
        top_id = add(n.op, tuple(top_id if _const(graph, j) is None else j for j in n.inputs), dict(n.attrs), i)
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
        if not isinstance(law, Continuous) or q.upstream_w1 > 0 or q.method not in ("quantile", "meansplit"):
            continue
        v = float(np.sum(np.minimum(q.m2, np.inf)))
        if mode == "mul":
            ea = law.mean_abs()
            v /= ea * ea
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


def w1_to_steps(s: _Pieces, atoms: np.ndarray, weights: np.ndarray, tv_h: float) -> tuple[float, float]:
    """An upper bound on ``W1(S, G)`` for the discrete law ``G`` (atoms sorted, distinct), and the slack in it.

    Two bounds on ``int |H - G|`` over ``G``'s range (the tails outside are :meth:`_Pieces.tails`), the smaller
    is kept:

    * monotone bracketing: between grid points ``H(t_k) <= H <= H(t_{k+1})`` (refined where its slack is);
    * interpolation: with ``L`` the linear interpolant of ``H`` on the grid, ``int |H - G| <= int |L - G|``
      (exact, piece by piece) ``+ sum_k int_{I_k} |H - L|``; on an interval of length ``dt`` where the density
      ``h = H'`` varies by ``V_k``, ``|H - L| <= min(t - t_k, t_{k+1} - t) V_k``, so the sum is at most
      ``max_k dt_k^2 / 4 * TV(h)`` (``tv_h`` bounds ``TV(h)``; ``inf`` turns this bound off).

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
    n = GRID_POINTS // 2
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
        if bound <= lin or slack <= 0.02 * bound:
            break
        # Split the grid intervals that hold most of the bracketing slack into 8.
        k = np.argsort(per)[::-1][: max(1, min(per.size, GRID_POINTS // 8))]
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


def certify(ev: Any, core: Core, kept: dict[int, Any], attr: Terms) -> tuple[float, Terms, dict[str, Any]] | None:
    """The semi-discrete bound on ``W1(Y, G_out)`` for the output of ``ev`` (see the module docstring).

    Args:
        ev: The :class:`~opgraph.dcg.engine.Evaluator` after its run.
        core: The output's core (:func:`find_core`).
        kept: The values of the core node and of its two operands (node id -> ``Val``).
        attr: The output's first-order attribution (label -> W1 share), used to split the measured term.

    Returns:
        ``(bound, terms, info)`` or None where the certificate does not apply.
    """
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
