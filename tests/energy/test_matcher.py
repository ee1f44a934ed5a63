import torch
import torch.nn.functional as F

from opgraph.energy.matcher import match, name_shape_table, pruned_spine
from opgraph.energy.recorder import record


def gelu_chain(x):
    h = x * 2.0
    g = 0.5 * h * (1.0 + torch.tanh(0.7978845608 * (h + 0.044715 * torch.pow(h, 3))))
    return g.sum(-1)


def gelu_fused(x):
    return F.gelu(x * 2.0, approximate="tanh").sum(-1)


def test_cuts_isolate_the_unfused_chain():
    x = torch.randn(32, 64)
    ra, rb = record(gelu_chain, x), record(gelu_fused, x)
    m = match(ra, rb)
    assert len(m.regions) == 3
    mid = m.regions[1]
    ops_a = {ra.graph.nodes[i].op for i in mid.a_nodes}
    ops_b = {rb.graph.nodes[i].op for i in mid.b_nodes}
    assert "aten::tanh" in ops_a and ops_b == {"aten::gelu"}
    assert m.spine_a and m.spine_b


def test_parameters_do_not_collapse_the_spine():
    fc1, fc2 = torch.nn.Linear(16, 16), torch.nn.Linear(16, 16)
    run = record(lambda x: fc2(torch.relu(fc1(x))), torch.randn(4, 16))
    spine = pruned_spine(run.graph)
    ops = [run.graph.nodes[i].op for i in spine]
    assert ops.count("aten::addmm") == 2 and "aten::relu" in ops


def test_residual_block_refined_by_alignment():
    fc = torch.nn.Linear(16, 16)

    def a(x):
        return x + fc(torch.tanh(x) * 1.0)

    def b(x):
        return x + fc(torch.tanh(x))

    x = torch.randn(4, 16)
    ra, rb = record(a, x), record(b, x.clone())
    m = match(ra, rb)
    # The branch is off the dominator path (x -> add): only the output is a level-0 cut; the monotone alignment
    # inside that segment adds the tanh and the linear layer as finer (level-1) cuts.
    ops = [(ra.graph.nodes[i].op, rb.graph.nodes[j].op, level) for i, j, level in m.cuts]
    assert ops == [("aten::tanh", "aten::tanh", 1), ("aten::addmm", "aten::addmm", 1), ("aten::add", "aten::add", 0)]
    assert [r.level for r in m.regions] == [1, 1, 0]
    mid = m.regions[1]
    extra = {ra.graph.nodes[i].op for i in mid.a_nodes} - {rb.graph.nodes[j].op for j in mid.b_nodes}
    assert extra == {"aten::mul"}  # the region that differs holds the extra multiply, and only it


def test_redundant_op_rule():
    q, k = torch.randn(2, 4, 8, 16), torch.randn(2, 4, 8, 16)

    def a(q, k):
        k = k.repeat_interleave(1, dim=1)
        return q @ k.transpose(-1, -2)

    def b(q, k):
        return q @ k.transpose(-1, -2)

    ra, rb = record(a, (q, k)), record(b, (q, k))
    m = match(ra, rb)
    red = [r for reg in m.regions for r in reg.redundant]
    assert red and red[0]["side"] == "a"
    assert "test_matcher.py" in red[0]["callsite"]
    table = name_shape_table(ra, [n.id for n in ra.op_nodes()], rb, [n.id for n in rb.op_nodes()])
    assert any(r["count_a"] > r["count_b"] for r in table)


def test_different_weights_do_not_match():
    torch.manual_seed(0)
    f1, f2 = torch.nn.Linear(8, 8), torch.nn.Linear(8, 8)
    x = torch.randn(4, 8)
    m = match(record(f1, x), record(f2, x))
    assert not m.cuts


def _lcs_reference(xs, ys, pairs):
    """The plain O(n m) table and walk (ties: earliest partners) that matcher._lcs must reproduce."""
    n, m = len(xs), len(ys)
    dp = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            if (xs[i], ys[j]) in pairs:
                dp[i][j] = dp[i + 1][j + 1] + 1
            else:
                dp[i][j] = max(dp[i + 1][j], dp[i][j + 1])
    out, i, j = [], 0, 0
    while i < n and j < m:
        if (xs[i], ys[j]) in pairs and dp[i][j] == dp[i + 1][j + 1] + 1:
            out.append((xs[i], ys[j]))
            i, j = i + 1, j + 1
        elif dp[i + 1][j] >= dp[i][j + 1]:
            i += 1
        else:
            j += 1
    return out


def test_lcs_matches_the_reference_walk():
    import random

    from opgraph.energy.matcher import _lcs

    rng = random.Random(0)
    for _ in range(500):
        xs = rng.sample(range(50), rng.randint(0, 10))
        ys = rng.sample(range(50, 100), rng.randint(0, 10))
        p = rng.choice([0.1, 0.3, 0.6])
        pairs = {(x, y) for x in xs for y in ys if rng.random() < p}
        partners = {}
        for x, y in pairs:
            partners.setdefault(x, []).append(y)
        assert _lcs(xs, ys, partners) == _lcs_reference(xs, ys, pairs)


def test_lcs_is_a_longest_common_subsequence():
    import itertools
    import random

    from opgraph.energy.matcher import _lcs

    def brute(xs, ys):
        for k in range(min(len(xs), len(ys)), 0, -1):
            for sub in itertools.combinations(xs, k):
                it = iter(ys)
                if all(any(c == y for y in it) for c in sub):
                    return k
        return 0

    rnd = random.Random(0)
    for _ in range(150):
        xs = [rnd.randint(0, 3) for _ in range(rnd.randint(0, 7))]
        ys = [rnd.randint(0, 3) for _ in range(rnd.randint(0, 7))]
        ia, ib = list(range(len(xs))), list(range(100, 100 + len(ys)))
        partners = {i: [j for j in ib if xs[i] == ys[j - 100]] for i in ia}
        pairs = _lcs(ia, ib, partners)
        assert len(pairs) == brute(xs, ys), (xs, ys, pairs)
        assert all(xs[i] == ys[j - 100] for i, j in pairs)
        assert all(a[0] < b[0] and a[1] < b[1] for a, b in zip(pairs, pairs[1:], strict=False))


def test_op_counts_leave_out_views():
    from opgraph.energy.matcher import op_counts

    fc = torch.nn.Linear(8, 8)
    run = record(lambda x: fc(x.reshape(4, 8)).t(), torch.randn(2, 16))
    counts = op_counts(run.graph, [n.id for n in run.op_nodes()])
    assert counts["aten::addmm"] == 1
    assert not {"aten::t", "aten::reshape", "aten::view"} & set(counts)


def test_dead_ops_join_the_next_region_and_the_name_table_counts_exactly():
    def chain_with_dead_op(x):
        torch.exp(x)  # feeds no cut: belongs to the first region after it in execution order
        return gelu_chain(x)

    x = torch.randn(32, 64)
    ra, rb = record(chain_with_dead_op, x), record(gelu_fused, x)
    m = match(ra, rb)
    (dead,) = [n.id for n in ra.op_nodes() if n.op == "aten::exp"]
    owner = [r.id for r in m.regions if dead in r.a_nodes]
    assert owner == [0], [(r.id, [ra.graph.nodes[i].op for i in r.a_nodes]) for r in m.regions]
    table = name_shape_table(ra, [n.id for n in ra.op_nodes()], rb, [n.id for n in rb.op_nodes()])
    rows = {r["op"]: r for r in table}
    assert (rows["aten::exp"]["count_a"], rows["aten::exp"]["count_b"]) == (1, 0)
    assert (rows["aten::gelu"]["count_a"], rows["aten::gelu"]["count_b"]) == (0, 1)
