"""Match two recorded runs by the values they compute and cut them into comparable regions.

1. Candidates: op outputs that are not views/aliases, not constant-valued and that depend on at least one
   argument of the call (parameter-only computations such as ``t(W)`` are not cut points).
2. Equivalence: candidates are bucketed by signature ``(numel, kind)`` and compared by fingerprint within a
   tolerance preset (``strict`` or ``precision``).
3. Level 0 (Magneton): each graph is pruned to the nodes that depend on an argument and cut at equivalent
   tensors on both dominator paths (``Graph.dominator_path``), aligned monotonically.
4. Level 1 (recursion for non-straight-line graphs, e.g. residual blocks whose branches are off the dominator
   path): between consecutive level-0 cuts, a monotone alignment (longest common subsequence in execution
   order) of equivalent candidates adds finer cuts.
5. Regions are the execution-order spans between consecutive cuts. Ops with no counterpart leave a region with
   an empty side. A redundant-op rule finds copies whose output equals their input in value and layout, and a
   name/shape table (HTA TraceDiff style) is the fallback where no cut exists.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opgraph.energy.fingerprint import TOLERANCES, Fingerprint, equivalent
from opgraph.energy.recorder import COPY_OPS, Run
from opgraph.graph import Graph, Node

#: Ops that move no data (views, metadata); left out of op multisets and per-op tables.
FREE_OPS = frozenset(
    {
        "aten::view",
        "aten::_unsafe_view",
        "aten::reshape",
        "aten::t",
        "aten::transpose",
        "aten::permute",
        "aten::expand",
        "aten::detach",
        "aten::alias",
        "aten::unsqueeze",
        "aten::squeeze",
        "aten::select",
        "aten::slice",
        "aten::as_strided",
        "aten::lift_fresh",
        "aten::split",
        "aten::split_with_sizes",
        "aten::unbind",
        "aten::chunk",
        "aten::narrow",
        "aten::_reshape_alias",
        "aten::view_as_real",
        "aten::view_as_complex",
        "aten::real",
        "aten::imag",
        "aten::unfold",
        "aten::diagonal",
        "aten::flatten",
        "getitem",
        "input",
    }
)


@dataclass
class Region:
    """A pair of corresponding op spans, one per run, ending at a value-equivalent cut (or the end).

    Attributes:
        id: Position in execution order.
        a_nodes: Op node ids of run A in the region (execution order).
        b_nodes: Op node ids of run B.
        a_cut: A's node at the region's end cut (None for a trailing region without a cut).
        b_cut: B's node at the end cut.
        level: 0 for a dominator-path cut, 1 for a cut found by the monotone alignment inside a segment.
    """

    id: int
    a_nodes: tuple[int, ...]
    b_nodes: tuple[int, ...]
    a_cut: int | None
    b_cut: int | None
    level: int = 0
    redundant: list[dict[str, Any]] = field(default_factory=list)

    def label(self, run_a: Run, run_b: Run) -> str:
        """A short 'what it computes' label built from the ops of both sides."""
        ops_a = op_counts(run_a.graph, self.a_nodes)
        ops_b = op_counts(run_b.graph, self.b_nodes)
        show = lambda c: "+".join(k.replace("aten::", "") for k, _ in c.most_common(3)) or "-"  # noqa: E731
        return f"{show(ops_a)} | {show(ops_b)}"


@dataclass
class Match:
    """The result of matching two runs.

    Attributes:
        regions: The region pairs in execution order.
        cuts: ``(a_node, b_node, level)`` of every cut.
        tolerance: The relative tolerance used.
        spine_a: A's pruned dominator path (node ids).
        spine_b: B's.
        equivalent_pairs: Number of equivalent candidate pairs found.
    """

    regions: list[Region]
    cuts: list[tuple[int, int, int]]
    tolerance: float
    spine_a: tuple[int, ...]
    spine_b: tuple[int, ...]
    equivalent_pairs: int


def op_counts(graph: Graph, node_ids: Sequence[int]) -> Counter[str]:
    """Multiset of the data-moving ops among ``node_ids``."""
    nodes = graph.nodes
    return Counter(
        nodes[i].op for i in node_ids if nodes[i].op not in FREE_OPS and not nodes[i].meta.get("recording_only")
    )


def _fps(run: Run) -> dict[int, Fingerprint]:
    out = {}
    for n in run.graph.nodes:
        fp = n.meta.get("fp")
        if fp is not None:
            out[n.id] = Fingerprint.from_list(fp)
    return out


def _arg_dependent(graph: Graph) -> list[bool]:
    args = {i for i in graph.inputs if graph.nodes[i].attrs.get("kind") == "arg"}
    src = graph.source_inputs()
    return [bool(s & args) for s in src]


def candidates(run: Run, fps: dict[int, Fingerprint]) -> list[int]:
    """Cut candidates of ``run`` in execution order (see the module docstring)."""
    dep = _arg_dependent(run.graph)
    out = []
    for n in run.graph.nodes:
        if n.op == "input" or n.meta.get("alias") or not dep[n.id]:
            continue
        fp = fps.get(n.id)
        if fp is None or fp.numel == 0 or (fp.constant and fp.numel > 1):
            continue
        out.append(n.id)
    return out


def pruned_spine(graph: Graph) -> tuple[int, ...]:
    """The dominator path of ``graph`` after dropping nodes that depend on no call argument (parameters).

    Parameters feed ops in the middle of a network straight from the source, so without pruning the dominator
    path collapses to the output (Magneton skips parameter edges for the same reason).
    """
    dep = _arg_dependent(graph)
    keep = [n.id for n in graph.nodes if dep[n.id]]
    new_id = {old: k for k, old in enumerate(keep)}
    nodes = []
    for old in keep:
        n = graph.nodes[old]
        ins = tuple(new_id[i] for i in n.inputs if i in new_id)
        nodes.append(Node(new_id[old], n.op if ins or n.op == "input" else "input", ins, dict(n.attrs), {}))
    inputs = tuple(k for k, n in enumerate(nodes) if n.op == "input")
    nodes = [
        n if n.op != "input" else Node(n.id, "input", (), {"name": n.attrs.get("name", f"x{n.id}")}, {}) for n in nodes
    ]
    outputs = tuple(new_id[o] for o in graph.outputs if o in new_id)
    if not outputs:
        return ()
    pruned = Graph(tuple(nodes), inputs, (max(outputs),))
    path = pruned.dominator_path()
    return tuple(keep[k] for k in path)


def _lcs(xs: Sequence[int], ys: Sequence[int], partners: Mapping[int, Sequence[int]]) -> list[tuple[int, int]]:
    """Longest common subsequence of two id lists; ``partners[x]``: the ys equivalent to x.

    Ties take the earliest partners. Rows without a partner are dropped first (they never change the path:
    the walk skips them), then the table is filled row by row with NumPy: ``row[j]`` is the suffix maximum
    of ``nxt[j + 1] + 1`` where ``xs[i]`` matches ``ys[j]`` and of ``nxt[j]`` elsewhere.
    """
    import numpy as np

    pos = {y: j for j, y in enumerate(ys)}
    rows = [(x, sorted({pos[y] for y in partners.get(x, ()) if y in pos})) for x in xs]
    rows = [(x, cols) for x, cols in rows if cols]
    n, m = len(rows), len(ys)
    if n == 0 or m == 0:
        return []
    dp = np.zeros((n + 1, m + 1), dtype=np.int32)
    for i in range(n - 1, -1, -1):
        nxt = dp[i + 1]
        cols = np.asarray(rows[i][1], dtype=np.intp)
        v = nxt[:m].copy()
        v[cols] = nxt[cols + 1] + 1
        dp[i, :m] = np.maximum.accumulate(v[::-1])[::-1]
    table = dp.tolist()
    colsets = [set(cols) for _x, cols in rows]
    out = []
    i = j = 0
    while i < n and j < m:
        if j in colsets[i] and table[i][j] == table[i + 1][j + 1] + 1:
            out.append((rows[i][0], ys[j]))
            i += 1
            j += 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return out


def match(run_a: Run, run_b: Run, *, tolerance: str | float = "strict") -> Match:
    """Match ``run_a`` against ``run_b`` and return the region pairs.

    Args:
        run_a: First recorded run.
        run_b: Second recorded run.
        tolerance: A preset name from :data:`~opgraph.energy.fingerprint.TOLERANCES` or a relative tolerance.
    """
    rtol = TOLERANCES[tolerance] if isinstance(tolerance, str) else float(tolerance)
    fa, fb = _fps(run_a), _fps(run_b)
    ca, cb = candidates(run_a, fa), candidates(run_b, fb)
    buckets: dict[tuple[int, str], list[int]] = {}
    for j in cb:
        buckets.setdefault(fb[j].signature, []).append(j)
    eq_pairs: set[tuple[int, int]] = set()
    for i in ca:
        for j in buckets.get(fa[i].signature, ()):
            if equivalent(fa[i], fb[j], rtol):
                eq_pairs.add((i, j))

    partners: dict[int, list[int]] = {}
    for i, j in eq_pairs:
        partners.setdefault(i, []).append(j)

    cand_a, cand_b = set(ca), set(cb)
    spine_a = tuple(i for i in pruned_spine(run_a.graph) if i in cand_a)
    spine_b = tuple(j for j in pruned_spine(run_b.graph) if j in cand_b)
    level0 = _lcs(spine_a, spine_b, partners)
    cuts: list[tuple[int, int, int]] = []
    prev_a, prev_b = -1, -1
    sa, sb = sorted(ca), sorted(cb)
    for a, b in [*level0, (len(run_a.graph.nodes), len(run_b.graph.nodes))]:
        seg_a = sa[bisect.bisect_right(sa, prev_a) : bisect.bisect_left(sa, a)]
        seg_b = sb[bisect.bisect_right(sb, prev_b) : bisect.bisect_left(sb, b)]
        cuts.extend((x, y, 1) for x, y in _lcs(seg_a, seg_b, partners))
        if a < len(run_a.graph.nodes):
            cuts.append((a, b, 0))
        prev_a, prev_b = a, b
    regions = _regions(run_a, run_b, cuts)
    for r in regions:
        r.redundant = redundant_ops(run_a, r.a_nodes, r.b_nodes, fa, run_b, "a") + redundant_ops(
            run_b, r.b_nodes, r.a_nodes, fb, run_a, "b"
        )
    return Match(regions, cuts, rtol, spine_a, spine_b, len(eq_pairs))


def _regions(run_a: Run, run_b: Run, cuts: list[tuple[int, int, int]]) -> list[Region]:
    """Assign every op to the first cut it feeds (dataflow); ops feeding no cut go by execution order."""
    side_ids = []
    for run, k in ((run_a, 0), (run_b, 1)):
        g = run.graph
        owner: dict[int, int] = {}
        for idx, cut in enumerate(cuts):
            stack = [cut[k]]
            while stack:
                nid = stack.pop()
                if nid in owner or g.nodes[nid].op == "input":
                    continue
                owner[nid] = idx
                stack.extend(g.nodes[nid].inputs)
        # ops that feed no cut (dead code, trailing work): by execution position (the first cut after them)
        pos = [c[k] for c in cuts]
        ordered = all(p < q for p, q in zip(pos, pos[1:]))
        for n in g.nodes:
            if n.op == "input" or n.id in owner:
                continue
            if ordered:
                owner[n.id] = bisect.bisect_right(pos, n.id)
            else:
                later = [i for i, p in enumerate(pos) if p > n.id]
                owner[n.id] = later[0] if later else len(cuts)
        members: dict[int, list[int]] = {}
        for nid, idx in owner.items():
            members.setdefault(idx, []).append(nid)
        side_ids.append(members)
    regions: list[Region] = []
    for idx in range(len(cuts) + 1):
        ra = tuple(sorted(side_ids[0].get(idx, ())))
        rb = tuple(sorted(side_ids[1].get(idx, ())))
        if idx < len(cuts):
            a, b, level = cuts[idx]
            regions.append(Region(len(regions), ra, rb, a, b, level))
        elif ra or rb:
            regions.append(Region(len(regions), ra, rb, None, None, -1))
    return regions


def redundant_ops(
    run: Run, nodes: Sequence[int], other_nodes: Sequence[int], fps: dict[int, Fingerprint], other: Run, side: str
) -> list[dict[str, Any]]:
    """Copies in ``nodes`` whose output equals one of their inputs in value, shape, dtype and strides.

    Only reported when the other side's region runs fewer ops of that kind ("no op at that position").
    """
    g = run.graph
    mine = Counter(g.nodes[i].op for i in nodes)
    theirs = Counter(other.graph.nodes[j].op for j in other_nodes)
    found = []
    for i in nodes:
        n = g.nodes[i]
        if n.op in FREE_OPS or n.meta.get("alias") or n.meta.get("mutates") or i not in fps:
            continue
        if n.op not in COPY_OPS and not n.op.startswith("aten::_to"):
            continue
        if mine[n.op] <= theirs[n.op]:
            continue
        for src in n.inputs:
            s = g.nodes[src]
            if src not in fps or s.meta.get("shape") != n.meta.get("shape"):
                continue
            if s.meta.get("dtype") != n.meta.get("dtype") or s.meta.get("strides") != n.meta.get("strides"):
                continue
            if fps[src].stats == fps[i].stats and fps[src].signature == fps[i].signature:
                found.append(
                    {
                        "side": side,
                        "node": i,
                        "source_node": src,
                        "op": n.op,
                        "callsite": n.meta.get("callsite", ""),
                        "lib_callsite": n.meta.get("lib_callsite", ""),
                    }
                )
                break
    return found


def name_shape_table(run_a: Run, a_nodes: Sequence[int], run_b: Run, b_nodes: Sequence[int]) -> list[dict[str, Any]]:
    """Fallback per-op table matched by op name and output shape only (HTA TraceDiff style).

    Returns:
        Rows ``{"op", "shape", "count_a", "count_b", "time_a_s", "time_b_s"}`` sorted by the time difference,
        where times are the single recorded execution (with recording on).
    """
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for side, run, ids in (("a", run_a, a_nodes), ("b", run_b, b_nodes)):
        for i in ids:
            n = run.graph.nodes[i]
            if n.op in FREE_OPS:
                continue
            key = (n.op, str(n.meta.get("shape", "")))
            row = rows.setdefault(
                key, {"op": n.op, "shape": key[1], "count_a": 0, "count_b": 0, "time_a_s": 0.0, "time_b_s": 0.0}
            )
            row[f"count_{side}"] += 1
            row[f"time_{side}_s"] += n.meta.get("dur_ns", 0) / 1e9
    return sorted(rows.values(), key=lambda r: -abs(r["time_a_s"] - r["time_b_s"]))
