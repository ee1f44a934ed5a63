"""Affine-arithmetic gradient enclosures over grid boxes (forward mode on :mod:`opgraph.dcg.affine` forms).

Interval forward mode encloses ``df/dx_i`` over a box by multiplying interval partials with interval operand
gradients; where a variable is used more than once (piston's volume ``sqrt(A^2 + B) - A`` with ``A`` and the outer
quotient all in ``S``), the factors' extremes lie at different corners and the enclosure compounds along the chain
(piston at 8 atoms: 40x the sampled range of the gradient, `docs/dcg.md`). Here every node carries an affine form of
its value and of each seeded partial, in the box's noise symbols ``e_j = (x_j - m_j) / h_j``: the chain rule
``dv/dx_i = sum_j (d op / d u_j)(u) du_j/dx_i`` is evaluated with the partials ``d op / d u_j`` themselves as forms of
the operands (``mul``: the other operand; ``div``: ``(G_u - V G_w) / W``; ``sqrt``: ``G_u / (2 V)``; a constant
power: ``c u^(c-1)``; ``exp``: ``V``; ``log``: ``1 / u``; ``tanh``: ``1 - V^2`` ...), so the products keep the
correlation between the factors and the overestimate is second order in the box's width instead of first.
Partials without a form rule fall back to the interval rule's derivative enclosure as a fresh error term (sound,
no better than interval forward mode there). The result of :func:`gradients` is the hull of each form (an interval
per box), which :func:`opgraph.dcg.taylor._slope` intersects with the interval ones.

Soundness is that of affine arithmetic (:mod:`opgraph.dcg.affine`: every form encloses its node's value as a
function of the noise symbols, shared error symbols standing for the same functions, rounding padded): a product
of two forms encloses the product of the two functions, so each gradient form encloses ``df/dx_i`` at every point
of the box. Cost: one value form and ``len(seeds)`` gradient forms per node, each ``k`` axis coefficients plus
error symbols; grids are processed in slices of the first axis of at most :data:`MAX_SLICE` boxes (bounded memory).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from opgraph.dcg import affine as af
from opgraph.dcg import intervals as iv

#: Whether every node's forms fold their error symbols into the remainder ``r`` (cheaper: ``k + 2`` arrays per form;
#: the correlation through the error symbols is lost, the axis coefficients are kept).
FOLD = True
#: Most boxes one slice of the grid holds (memory: a form is ``k + 2`` arrays plus its error symbols per node).
MAX_SLICE = 2**14

Interval = iv.Interval


def _fold(f: af.Aff) -> af.Aff:
    """``f`` with its error symbols added to ``r`` in magnitude (sound: each symbol lies in ``[-1, 1]``)."""
    errs = [i for i in f.a if i >= af.ERR_BASE]
    if not errs:
        return f
    with np.errstate(all="ignore"):
        r = f.r + sum(np.abs(f.a[i]) for i in errs)
        r = r * (1 + 2.0**-50) + 1e-300
    return af.Aff(
        f.axes, f.c, {i: x for i, x in f.a.items() if i < af.ERR_BASE}, np.where(np.isnan(r), np.inf, r), None
    )


def _add(K: tuple[int, ...], x: af.Aff, y: af.Aff, sign: float = 1.0) -> af.Aff:
    """``x + sign y`` on the grid of ``K`` (a constant operand laid out first: the result takes ``x``'s axes)."""
    return af.add(af.expand(x, K), af.expand(y, K), sign)


def _mul(K: tuple[int, ...], x: af.Aff, y: af.Aff) -> af.Aff:
    """``x y`` on the grid of ``K``."""
    return af.mul(af.expand(x, K), af.expand(y, K))


_WIDE = (np.full((), -np.inf), np.full((), np.inf))


def _form(
    op: str,
    K: tuple[int, ...],
    fs: list[af.Aff],
    encs: list[Interval],
    enc: Interval,
    attrs: dict[str, Any] | None = None,
) -> af.Aff:
    """:func:`opgraph.dcg.affine.node_form` without its per-box swap to the interval enclosure ``enc``.

    The swap would drop the form's dependence on the noise symbols, which the chain rule's products need; ``enc`` is
    used only on the boxes where no form results (no rule, or an unbounded remainder), as a fresh error term.
    """
    f = af.node_form(op, K, fs, encs, _WIDE, attrs)  # the whole line never swaps in
    bad = ~np.isfinite(f.r)
    if not np.any(bad):
        return f
    box = af._box_form(K, enc)
    a = {i: np.where(bad, 0.0, x) for i, x in f.a.items()}
    return af.Aff(K, np.where(bad, box.c, f.c), a, np.where(bad, box.r, f.r), None)


def _recip(f: af.Aff, enc: Interval, K: tuple[int, ...]) -> af.Aff:
    return _form("reciprocal", K, [f], [enc], iv.irecip(enc))


def _partials(
    n: Any, K: tuple[int, ...], fs: list[af.Aff], encs: list[Interval], v: af.Aff, venc: Interval, parts: list[Interval]
) -> list[af.Aff | None]:
    """Forms of ``d op / d u_j`` per operand (``None``: the operand is a constant, or see the ``div`` case)."""
    op = n.op
    one = af.constant(1.0)
    if op in ("identity", "copy", "contiguous", "convert", "add"):
        return [one] * len(fs)
    if op == "neg":
        return [af.constant(-1.0)]
    if op == "sub":
        return [one, af.constant(-1.0)]
    if op == "mul":
        return [fs[1], fs[0]]
    if op == "square":
        return [af.scale(fs[0], 2.0)]
    if op == "exp":
        return [v]
    if op == "log":
        return [_recip(fs[0], encs[0], K)]
    if op == "sqrt":
        return [af.scale(_recip(v, venc, K), 0.5)]
    if op == "reciprocal":
        return [af.scale(af.mul(v, v), -1.0)]
    if op == "tanh":
        return [_add(K, af.constant(1.0), af.mul(v, v), -1.0)]
    if op == "sin":
        return [_form("cos", K, [fs[0]], [encs[0]], iv.rule("cos", [encs[0]], {})[0])]
    if op == "cos":
        return [af.scale(_form("sin", K, [fs[0]], [encs[0]], iv.rule("sin", [encs[0]], {})[0]), -1.0)]
    if op == "pow" and not fs[1].axes:  # a constant exponent c: c u^(c - 1)
        c = float(np.asarray(fs[1].c))
        if c == 1.0:
            return [one, None]
        if c == 2.0:
            return [af.scale(fs[0], 2.0), None]
        e = af.constant(c - 1.0)
        p = _form("pow", K, [fs[0], e], [encs[0], iv.point(c - 1.0)], iv.ipow_const(encs[0], c - 1.0))
        return [af.scale(p, c), None]
    return [af._box_form(K, p) for p in parts]  # the interval partials as fresh error terms


#: A gradient's affine form on the grid: ``(c, {axis: a_j}, r)``, ``df/dx_i`` within ``c + sum_j a_j e_j +- r``
#: at every point of the box, ``e_j = (x_j - m_j) / h_j`` (``m_j, h_j``: :func:`opgraph.dcg.affine.half_widths` of
#: axis ``j``'s range; an axis held at a point has no symbol).
Form = tuple[np.ndarray, dict[int, np.ndarray], np.ndarray]


def _slice_gradients(
    graph: Any,
    output: int,
    K: tuple[int, ...],
    box: dict[int, Interval],
    seeds: Sequence[int],
    keep: dict[int, Form] | None = None,
) -> dict[int, Interval]:
    last = graph.last_uses()
    forms: dict[int, af.Aff] = {}
    encs: dict[int, Interval] = {}
    grads: dict[int, dict[int, af.Aff]] = {}
    with iv.quiet():
        for n in graph.nodes:
            if n.id > output:
                break
            if n.op == "input":
                lo, hi = box[n.id]
                if n.id not in seeds and np.array_equal(lo, hi):  # an axis held at its atoms: a constant per box
                    forms[n.id] = af.Aff(K, np.asarray(lo, dtype=float), {}, np.zeros(()), {})
                else:
                    c, h = af.half_widths(lo, hi)
                    fin = np.isfinite(c) & np.isfinite(h)
                    forms[n.id] = af.Aff(
                        K,
                        np.where(fin, c, 0.0),
                        {n.id: np.where(fin, h, 0.0)},
                        np.where(fin, 0.0, np.inf) * np.ones(()),
                        None,
                    )  # no Lipschitz tracking
                encs[n.id] = (lo, hi)
                grads[n.id] = {n.id: af.constant(1.0)} if n.id in seeds else {}
            elif n.op == "const":
                val = float(np.asarray(n.attrs["value"], dtype=float))
                forms[n.id] = af.constant(val)
                encs[n.id] = iv.point(val)
                grads[n.id] = {}
            else:
                ops = list(n.inputs)
                args = [encs[j] for j in ops]
                venc, parts = iv.rule(n.op, args, n.attrs)
                fs = [forms[j] for j in ops]
                v = _form(n.op, K, fs, args, venc, n.attrs)
                rad = v.radius()
                venc = (np.fmax(venc[0], v.c - rad), np.fmin(venc[1], v.c + rad))
                venc = iv.widen(*venc)
                g: dict[int, af.Aff] = {}
                if any(grads[j] for j in ops):
                    if n.op == "div" and fs[1].axes:  # (G_u - V G_w) / W: one reciprocal, the quotient shared
                        rw = _recip(fs[1], args[1], K)
                        for i in set(grads[ops[0]]) | set(grads[ops[1]]):
                            gu, gw = grads[ops[0]].get(i), grads[ops[1]].get(i)
                            t = gu if gw is None else af.mul(v, gw)
                            if gw is not None:
                                t = af.scale(t, -1.0) if gu is None else _add(K, gu, t, -1.0)
                            g[i] = _mul(K, t, rw)
                    else:
                        ps = _partials(n, K, fs, args, v, venc, parts)
                        for j, p in zip(ops, ps, strict=True):
                            if p is None:
                                continue
                            for i, gj in grads[j].items():
                                t = _mul(K, p, gj)
                                g[i] = t if i not in g else _add(K, g[i], t)
                if FOLD:
                    v, g = _fold(v), {i: _fold(x) for i, x in g.items()}
                forms[n.id], encs[n.id], grads[n.id] = v, venc, g
            for j in set(n.inputs):
                if last.get(j, np.inf) <= n.id and j != output:
                    forms.pop(j, None)
                    encs.pop(j, None)
                    grads.pop(j, None)
    out: dict[int, Interval] = {}
    for i, gf in grads[output].items():
        gf = af.expand(gf, K) if gf.axes != K else gf
        rad = gf.radius()
        with np.errstate(all="ignore"):
            lo, hi = iv.widen(gf.c - rad, gf.c + rad)
        bad = np.isnan(lo) | np.isnan(hi)
        out[i] = (np.where(bad, -np.inf, lo), np.where(bad, np.inf, hi))
        if keep is not None:  # the form itself (its error symbols folded into r: FOLD), where it is finite
            f = _fold(gf)
            if all(j < af.ERR_BASE for j in f.a):
                keep[i] = (np.asarray(f.c, dtype=float), {j: np.asarray(x, dtype=float) for j, x in f.a.items()}, f.r)
    return out


def gradients(
    graph: Any,
    output: int,
    axes: Sequence[int],
    box: dict[int, Interval],
    seeds: Sequence[int],
    forms: dict[int, Form] | None = None,
) -> dict[int, Interval]:
    """Per seeded axis, an enclosure of ``df/dx_i`` over every box (hull of its affine form), laid out on the grid.

    Args:
        graph: The output's graph (every input node's id is its axis; ops as in :func:`opgraph.dcg.taylor.supported`).
        output: The output node's id.
        axes: The grid's axes; ``box[a]`` is laid out to broadcast over them (``-1`` at ``a``'s position).
        box: Per axis, the cells' ``(lo, hi)`` (degenerate cells give an axis at its atom).
        seeds: The axes whose partials are wanted.
        forms: If given, receives per seeded axis its affine form (:data:`Form`, broadcast to the grid) where it has
            no error symbol left (the hulls returned are the same).
    """
    K = tuple(axes)
    shape = tuple(int(np.size(box[a][0])) for a in K)
    size = int(np.prod(shape)) if shape else 1
    per = max(1, shape[0] * MAX_SLICE // max(size, 1)) if shape else 1
    if not shape or per >= shape[0]:
        return _slice_gradients(graph, output, K, box, seeds, forms)
    a0 = K[0]
    pieces: list[dict[int, Interval]] = []
    kept: list[dict[int, Form]] = []
    for s0 in range(0, shape[0], per):
        sl = slice(s0, s0 + per)
        sub = {a: (box[a] if a != a0 else tuple(np.asarray(x)[sl] for x in box[a])) for a in K}
        kept.append({})
        pieces.append(_slice_gradients(graph, output, K, sub, seeds, kept[-1] if forms is not None else None))  # type: ignore[arg-type]
    if forms is not None:  # the slices' forms put together along the first axis (an axis missing in one: dropped)
        rows = [min(per, shape[0] - n * per) for n in range(len(kept))]

        def cat(parts: list[np.ndarray]) -> np.ndarray:
            return np.concatenate([np.broadcast_to(x, (m, *shape[1:])) for x, m in zip(parts, rows, strict=True)], 0)

        for i in kept[0]:
            syms = set(kept[0][i][1])
            if not all(i in k and set(k[i][1]) == syms for k in kept):
                continue
            fs = [k[i] for k in kept]
            forms[i] = (cat([f[0] for f in fs]), {j: cat([f[1][j] for f in fs]) for j in syms}, cat([f[2] for f in fs]))
    out: dict[int, Interval] = {}
    for i in pieces[0]:
        ends = []
        for e in (0, 1):
            ends.append(
                np.concatenate(
                    [
                        np.broadcast_to(p[i][e], (min(per, shape[0] - k * per), *shape[1:]))
                        for k, p in enumerate(pieces)
                    ],
                    axis=0,
                )
            )
        out[i] = (ends[0], ends[1])
    return out
