from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from opgraph.graph import from_fx  # noqa: E402
from opgraph.perf import zoo  # noqa: E402
from opgraph.perf.collect import collect_layout, layout_record, split_names  # noqa: E402
from opgraph.perf.features import minor_to_major, node_features  # noqa: E402
from opgraph.perf.layout import configurable_nodes, decode_configs, sample_configs, wrap_layout  # noqa: E402
from opgraph.perf.measure import MeasureSettings, measure_configs  # noqa: E402
from opgraph.perf.tpugraphs import load_graph  # noqa: E402

FAST = MeasureSettings(rounds=2, reps=1, warmup=1)


class Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        y = torch.relu(self.c1(x))
        y = self.c2(y) + 1.0
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(y, 1), 1))


def test_features_of_a_conv_graph():
    g = from_fx(Small().eval(), (torch.randn(2, 3, 16, 16),))
    feat, opcode, edges = node_features(g)
    assert feat.shape == (len(g), 140) and feat.dtype == np.float32
    convs = [n.id for n in g if n.op == "conv2d"]
    assert list(opcode[convs]) == [26, 26]  # HLO convolution
    assert opcode[[n.id for n in g if n.op == "linear"][0]] == 34  # dot
    c2 = convs[1]
    assert feat[c2, 13] == 1  # f32 one-hot
    assert list(feat[c2, 21:25]) == [2, 8, 8, 8]  # output shape
    assert list(feat[c2, 37:39]) == [3, 3] and list(feat[c2, 45:47]) == [2, 2]  # window, stride
    assert feat[c2, 107] == 8  # feature_group_count
    assert list(feat[c2, 134:140]) == [3, 2, 1, 0, -1, -1]
    # edges are [consumer, producer]
    assert all(u > v for u, v in edges)
    assert [c2, convs[0] + 1] in edges.tolist()  # conv2 consumes relu(conv1)


def test_minor_to_major_from_strides():
    x = torch.randn(2, 3, 4, 5)
    assert minor_to_major(tuple(x.shape), x.stride()) == [3, 2, 1, 0]
    y = x.contiguous(memory_format=torch.channels_last)
    assert minor_to_major(tuple(y.shape), y.stride()) == [1, 3, 2, 0]


def test_zoo_is_seeded_and_builds_every_family():
    a = zoo.generate(6, 3, families=zoo.FAMILIES, scale=0.5)
    b = zoo.generate(6, 3, families=zoo.FAMILIES, scale=0.5)
    assert [s.name for s in a] == [s.name for s in b]
    assert len({s.name for s in a}) == 6
    for spec in a:
        m, ex = spec.build()
        g = from_fx(m, ex)
        n_cfg = len(configurable_nodes(g))
        assert (n_cfg > 0) == (spec.family in zoo.CNN_FAMILIES), spec.name
    m1, _ = a[0].build()
    m2, _ = b[0].build()
    assert all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters()))


def test_layout_configs_keep_the_result_and_change_formats():
    m = Small().eval()
    ex = (torch.randn(2, 3, 16, 16),)
    g = from_fx(m, ex)
    targets = [g.node(i).attrs["target"] for i in configurable_nodes(g)]
    lm = wrap_layout(m, ex, targets)
    ref = m(*ex)
    for choice in ([0, 0], [1, 0], [1, 1]):
        lm.set_config(choice)
        torch.testing.assert_close(lm.run(), ref, rtol=1e-4, atol=1e-5)
    assert not isinstance(m.c1, type(lm.module.c1))  # the original is untouched
    rows = sample_configs(3, 5, np.random.default_rng(0))
    assert rows.shape == (5, 3) and not rows[0].any() and rows[1].all()
    assert len({r.tobytes() for r in rows}) == 5
    assert sample_configs(2, 40, np.random.default_rng(0)).shape == (4, 2)  # whole space


def _fake_timer(monkeypatch, costs_ns):
    """Replace the CPU timer by one that returns ``costs_ns[i]`` for config i's thunk (no real timing)."""
    import opgraph.perf.measure as measure

    def prepare(i):
        def run():
            return None

        run.cost_ns = costs_ns[i]
        return run

    monkeypatch.setattr(measure, "cpu_ns", lambda fn: int(fn.cost_ns))
    return prepare


def test_measure_protocol_records_noise_and_aborts(monkeypatch):
    costs = [200_000, 210_000, 190_000, 4_000_000, 205_000]
    prepare = _fake_timer(monkeypatch, costs)
    m = measure_configs(5, prepare, settings=MeasureSettings(rounds=3, reps=2, warmup=1, abort_factor=5), seed=1)
    assert m.rounds_ns.shape == (5, 3)
    assert m.runtime_ns.tolist() == costs
    # Config 3 costs 20x the best: after its first timing it is aborted (with seed 1 it is not timed first) and
    # its later rounds repeat that first timing; the others are never aborted.
    assert m.aborted.tolist() == [False, False, False, True, False]
    assert m.rounds_ns[3].tolist() == [costs[3]] * 3
    assert m.meta["n_aborted"] == 1 and m.meta["n_failed"] == 0
    assert m.noise == 0.0  # identical rounds
    assert m.normalizer_ns.tolist() == [costs[0]] * 5  # the reference config 0
    assert "loadavg_start" in m.meta and "malloc_env_set" in m.meta and m.meta["timer"].startswith("time.thread")


def test_measure_records_failing_configs(monkeypatch):
    costs = [300_000, 0, 500_000]
    timed = _fake_timer(monkeypatch, costs)

    def prepare(i):
        if i == 1:
            raise RuntimeError("boom")
        return timed(i)

    m = measure_configs(3, prepare, settings=FAST)
    assert m.failed.tolist() == [False, True, False]
    assert m.runtime_ns.tolist() == [300_000, 10 * 500_000, 500_000]  # a failed config: 10x the worst
    assert "boom" in m.meta["errors"]["1"]


def test_collect_layout_is_resumable(tmp_path):
    specs = zoo.generate(2, 7, scale=0.5)
    res = collect_layout(specs, tmp_path, n_configs=4, settings=FAST, progress=False)
    assert [r["skipped"] for r in res] == [False, False]
    rec = load_graph(tmp_path / f"{specs[0].name}.npz")
    assert rec.kind == "layout" and rec.n_configs == 4
    assert rec.config_runtime_rounds.shape == (4, 2)
    assert not decode_configs(rec.config_matrix([0])).any()  # config 0 = all NCHW (default)
    assert {"cpu", "loadavg_start", "tau_between_rounds", "noise", "torch"} <= set(rec.measure_meta)
    mtime = (tmp_path / f"{specs[0].name}.npz").stat().st_mtime_ns
    res2 = collect_layout(specs, tmp_path, n_configs=4, settings=FAST, progress=False)
    assert [r["skipped"] for r in res2] == [True, True]
    assert (tmp_path / f"{specs[0].name}.npz").stat().st_mtime_ns == mtime


def test_model_without_convs_and_untraceable_model():
    from opgraph.graph import TraceError
    from opgraph.perf.errors import PerfError

    with pytest.raises(PerfError, match="no Conv2d"):
        layout_record("mlp", torch.nn.Linear(4, 4), (torch.randn(2, 4),), measure=False)

    class Branchy(torch.nn.Module):
        def forward(self, x):
            if x.sum() > 0:
                return x
            return -x

    with pytest.raises(TraceError, match="Branchy"):
        layout_record("b", Branchy(), (torch.randn(2, 3, 4, 4),), measure=False)


def test_split_holds_out_whole_graphs():
    tr, te = split_names([f"g{i}" for i in range(10)], 0.2, 0)
    assert len(te) == 2 and not set(tr) & set(te) and len(tr) == 8


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without a GPU")
def test_cuda_timer_without_gpu_is_a_clear_error():
    from opgraph.perf.errors import MeasurementError

    with pytest.raises(MeasurementError, match="timer='cpu'"):
        measure_configs(2, lambda i: lambda: None, settings=MeasureSettings(timer="cuda"))
    with pytest.raises(MeasurementError, match="'cpu' or 'cuda'"):
        measure_configs(2, lambda i: lambda: None, settings=MeasureSettings(timer="wall"))


def test_serial_and_process_executors_sample_the_same_configs(tmp_path):
    specs = zoo.generate(1, 11, scale=0.5)
    collect_layout(specs, tmp_path / "a", n_configs=3, settings=FAST, progress=False)
    collect_layout(specs, tmp_path / "b", n_configs=3, settings=FAST, executor="process", progress=False)
    a = load_graph(tmp_path / "a" / f"{specs[0].name}.npz")
    b = load_graph(tmp_path / "b" / f"{specs[0].name}.npz")
    np.testing.assert_array_equal(a.config_matrix(), b.config_matrix())
    np.testing.assert_array_equal(a.node_feat, b.node_feat)
