import time
import weakref

import pytest
import torch
import torch.nn.functional as F

from opgraph.energy import settings as settings_mod
from opgraph.energy.errors import EnergyError
from opgraph.energy.recorder import configured, load, record
from opgraph.energy.replay import RegionRunner
from opgraph.graph import Graph


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)

    def forward(self, x):
        return torch.relu(self.fc(x))


def test_graph_structure_callsite_module_path():
    model = Block()

    def fn(x):
        y = model(x)
        return y.sum()  # marker line

    run = record(fn, torch.randn(4, 8))
    g = run.graph
    assert isinstance(g, Graph)
    ops = [n.op for n in g.nodes]
    assert "aten::addmm" in ops and "aten::relu" in ops and "aten::sum" in ops
    names = {g.nodes[i].attrs["name"] for i in g.inputs}
    assert {"arg0", "model.fc.weight", "model.fc.bias"} <= names
    addmm = next(n for n in g.nodes if n.op == "aten::addmm")
    assert addmm.meta["module_path"] == "model.fc"
    assert addmm.meta["shape"] == [4, 8] and addmm.meta["dtype"] == "float32"
    assert "strides" in addmm.meta and addmm.meta["fp"][0] == 32
    total = next(n for n in g.nodes if n.op == "aten::sum")
    assert total.meta["callsite"].startswith("test_recorder.py:")
    assert total.meta["func"] == "fn"
    assert g.outputs == (total.id,)
    assert run.settings["num_threads"] == torch.get_num_threads()


def test_inplace_mutation_keeps_old_value():
    def fn(x):
        y = x * 2
        z = y.clone()
        z.relu_()
        return z + y

    x = torch.randn(100)
    run = record(fn, x)
    clone = next(n for n in run.graph.nodes if n.op == "aten::clone")
    assert run.values[clone.id].min() < 0  # recorded before relu_ changed it
    relu = next(n for n in run.graph.nodes if n.op == "aten::relu_")
    assert relu.meta["mutates"]
    add = next(n for n in run.graph.nodes if n.op == "aten::add")
    assert relu.id in add.inputs


def test_mutating_callable_runs_on_copies():
    def fn(x):
        x.mul_(2)
        return x + 1

    x = torch.ones(4)
    run = record(fn, x)
    assert torch.equal(x, torch.ones(4))
    assert run.graph.meta["mutated_inputs"] == [0]
    runner = RegionRunner(run, [n.id for n in run.graph.nodes if n.op != "input"])
    runner()
    runner()
    assert torch.equal(run.values[run.graph.inputs[0]], torch.ones(4))


def test_multi_output_getitem_and_replay():
    run = record(lambda x: torch.topk(x, 3).values * 2, torch.randn(10))
    ops = [n.op for n in run.graph.nodes]
    assert "getitem" in ops
    RegionRunner(run, [n.id for n in run.graph.nodes if n.op != "input"])()


def test_save_load_roundtrip(tmp_path):
    run = record(lambda x: F.gelu(x @ x.T), torch.randn(16, 16))
    out = run.save(tmp_path / "run")
    again = load(out)
    assert again.graph.to_dict() == run.graph.to_dict()
    assert again.replayable
    RegionRunner(again, [n.id for n in again.graph.nodes if n.op != "input"])()
    with pytest.raises(EnergyError, match="graph.json"):
        load(tmp_path / "nothing")


def test_snapshot_limit_switches_to_eager_fingerprints():
    run = record(lambda x: (x * 2 + 1).sum(), torch.randn(1000), snapshot_limit_bytes=100)
    assert not run.replayable
    assert all("fp" in n.meta for n in run.graph.nodes if n.op.startswith("aten::"))
    with pytest.raises(EnergyError, match="snapshot limit"):
        RegionRunner(run, [1])


def test_configured_and_settings():
    fn = configured(lambda x: x * 2, num_threads=1, default_dtype="float64")
    run = record(fn, torch.randn(3))
    assert run.settings["default_dtype"] == "float64"
    assert torch.get_default_dtype() == torch.float32
    with pytest.raises(EnergyError, match="cannot be applied"):
        configured(lambda x: x, **{"version.torch": "1"})
    d = settings_mod.diff({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4})
    assert d == {"b": (2, 3), "c": (None, 4)}


def test_record_rejects_non_callable():
    with pytest.raises(EnergyError, match="callable"):
        record(42, ())
    with pytest.raises(EnergyError, match="returned no tensor"):
        record(lambda x: None, torch.randn(2))


def test_fx_recorder_uses_graph_call_sites():
    from opgraph.energy.recorder import record_fx

    run = record_fx(Block(), torch.randn(4, 8))
    addmm = next(n for n in run.graph.nodes if n.op == "aten::addmm")
    assert addmm.meta["module_path"] == "fc" and addmm.meta["fx_node"] == "fc"
    assert addmm.meta["callsite"].startswith("test_recorder.py:") and "forward" in addmm.meta["callsite"]
    assert run.graph.meta["recorder"] == "fx"

    def untraceable(x):
        if x.sum() > 0:
            return x
        return -x

    with pytest.raises(EnergyError, match="eager"):
        record_fx(untraceable, torch.randn(3))


def test_metadata_is_taken_at_op_time():
    def fn(x):
        y = x * 2
        y.t_()  # an in-place metadata change after the op
        return y + 1

    run = record(fn, torch.randn(2, 3))
    mul = next(n for n in run.graph.nodes if n.op == "aten::mul")
    assert mul.meta["shape"] == [2, 3] and mul.meta["strides"] == [3, 1]
    assert list(run.values[mul.id].shape) == [2, 3]


def test_first_seen_tensor_written_in_place_keeps_its_old_value():
    buf = torch.zeros(4)

    def fn(x):
        buf.add_(x)
        return buf * 1

    before = buf.clone()
    x = torch.ones(4)
    run = record(fn, x, warmup=False)
    ext = next(n for n in run.graph.nodes if n.op == "input" and n.attrs["kind"] == "external")
    assert torch.equal(run.values[ext.id], before)
    add = next(n for n in run.graph.nodes if n.op == "aten::add_")
    mul = next(n for n in run.graph.nodes if n.op == "aten::mul")
    assert add.meta["mutates"] and mul.inputs == (add.id,)


def test_cpu_time_recorded_and_saved(tmp_path):
    run = record(lambda x: x @ x, torch.randn(32, 32))
    assert run.cpu_s > 0 and run.wall_s > 0
    assert load(run.save(tmp_path / "r")).cpu_s == run.cpu_s


def test_call_sites_and_module_paths_of_nested_modules():
    class Outer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Block()

        def forward(self, x):
            return self.inner(x) * 3  # outer line

    model = Outer()
    run = record(model, torch.randn(2, 8))
    relu = next(n for n in run.graph.nodes if n.op == "aten::relu")
    mul = next(n for n in run.graph.nodes if n.op == "aten::mul")
    addmm = next(n for n in run.graph.nodes if n.op == "aten::addmm")
    assert relu.meta["module_path"] == "Outer.inner" and relu.meta["func"] == "forward"
    assert addmm.meta["module_path"] == "Outer.inner.fc"
    assert mul.meta["module_path"] == "Outer" and mul.meta["callsite"].startswith("test_recorder.py:")
    import linecache

    assert "outer line" in linecache.getline(mul.meta["file"], mul.meta["line"])


def test_timing_pass_keeps_nothing_and_is_the_timed_call(tmp_path):
    refs = []
    calls = []

    def fn(x):
        y = x * 2
        refs.append(weakref.ref(y))
        calls.append(1)
        if len(calls) == 2:  # only in the second call, the timing pass
            time.sleep(0.02)
        return (y + 1).sum()

    run = record(fn, torch.randn(1000))
    assert len(calls) == 2  # recording call + timing pass; no extra warm-up call
    assert refs[0]() is not None  # the recording call's intermediate is kept for replay
    assert refs[1]() is None  # the timing pass keeps no tensor alive
    meta = run.graph.meta
    assert meta["timing"] == "timing pass"
    assert meta["record_wall_s"] > 0 and meta["record_cpu_s"] > 0
    add = next(n for n in run.graph.nodes if n.op == "aten::add")
    assert add.meta["start_ns"] >= 20e6  # after the sleep: the op's start comes from the timing pass
    assert run.wall_s >= 0.02
    mul = next(n for n in run.graph.nodes if n.op == "aten::mul")
    assert torch.equal(run.values[mul.id], run.inputs[0] * 2)  # values still from the recording call
    assert load(run.save(tmp_path / "r")).graph.meta["timing"] == "timing pass"


def test_single_pass_is_one_call_timed_while_recording():
    calls = []

    def fn(x):
        calls.append(1)
        return x.sin()

    run = record(fn, torch.randn(8), warmup=False, timing_pass=False)
    assert len(calls) == 1
    assert run.graph.meta["timing"] == "recording call"
    assert run.wall_s == run.graph.meta["record_wall_s"]
    record(fn, torch.randn(8), timing_pass=False)  # warm-up call + recording call
    assert len(calls) == 3


def test_timing_pass_falls_back_when_the_ops_differ(caplog):
    calls = []

    def fn(x):
        calls.append(1)
        return x.sin() if len(calls) == 1 else x.cos()

    with caplog.at_level("WARNING", logger="opgraph.energy.recorder"):
        run = record(fn, torch.randn(8))
    assert run.graph.meta["timing"] == "recording call"
    assert run.wall_s == run.graph.meta["record_wall_s"]
    assert "timings are from the recording call" in caplog.text
    assert [n.op for n in run.op_nodes()] == ["aten::sin"]


def test_timing_pass_sees_the_same_random_numbers():
    seed = next(s for s in range(100) if _two_draws_differ(s))

    def fn(x):
        return x.sin() if torch.rand(()) > 0.5 else x.cos()

    x = torch.randn(8)
    torch.manual_seed(seed)
    run = record(fn, x)
    after_record = torch.rand(3)
    assert run.graph.meta["timing"] == "timing pass"
    # keeping rand's output alive adds a detach the timing pass does not run: it is left out of the match
    assert [n.meta["dur_ns"] for n in run.op_nodes() if n.op == "aten::detach"] == [0]
    torch.manual_seed(seed)
    fn(x)
    assert torch.equal(after_record, torch.rand(3))  # the generator advanced as by one call


def _two_draws_differ(seed):
    torch.manual_seed(seed)
    return (torch.rand(()) > 0.5) != (torch.rand(()) > 0.5)


def test_timing_pass_that_raises_keeps_the_recording(caplog):
    calls = []

    def fn(x):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("only once")
        return x.sin()

    with caplog.at_level("WARNING", logger="opgraph.energy.recorder"):
        run = record(fn, torch.randn(8))
    assert run.graph.meta["timing"] == "recording call"
    assert "only once" in caplog.text
    assert [n.op for n in run.op_nodes()] == ["aten::sin"]


def test_library_frames_are_kept_beside_the_users_line():
    """An op inside torch.nn gets the user's line as its call site and the torch/nn line as its library site."""
    import linecache
    import os

    lin = torch.nn.Linear(8, 4)
    ln = torch.nn.LayerNorm(4)

    def user_fn(x):
        return F.softmax(ln(lin(x)), -1)  # the user's line

    run = record(user_fn, torch.randn(3, 8))
    ops = {n.op: n for n in run.op_nodes()}
    here = os.path.basename(__file__)
    torch_nn = os.path.join(os.path.dirname(torch.__file__), "nn") + os.sep
    for op, lib_file, func in [
        ("aten::addmm", "linear.py", "forward"),
        ("aten::native_layer_norm", "functional.py", "layer_norm"),
        ("aten::_softmax", "functional.py", "softmax"),
    ]:
        meta = ops[op].meta
        assert meta["callsite"].startswith(f"{here}:") and meta["func"] == "user_fn", meta["callsite"]
        assert meta["lib_file"].startswith(torch_nn) and os.path.basename(meta["lib_file"]) == lib_file, op
        assert meta["lib_func"] == func and meta["lib_callsite"] == meta["lib_stack"][0]
        assert linecache.getline(meta["lib_file"], meta["lib_line"]).strip(), op
    # the layer norm went through the module's forward: the stack holds normalization.py outside functional.py
    assert os.path.basename(ops["aten::native_layer_norm"].meta["lib_stack"][1].split(":")[0]) == "normalization.py"


def test_ops_called_directly_have_no_library_site():
    run = record(lambda x: (x * 2).sum(), torch.randn(4))
    for n in run.op_nodes():
        assert "lib_callsite" not in n.meta and n.meta["callsite"].startswith("test_recorder.py:")


def test_frame_kind_classifies_torch_libraries_and_plumbing():
    import os

    from opgraph.energy.recorder import _LIBRARY, _SKIP, _USER, frame_kind

    tdir = os.path.join(os.sep, "env", "site-packages", "torch")
    libs = (os.path.join(os.sep, "env", "site-packages") + os.sep,)
    std = (os.path.join(os.sep, "py", "lib") + os.sep,)

    def kind(*parts):
        return frame_kind(os.path.join(*parts), tdir, libs, std)

    assert kind(tdir, "nn", "modules", "linear.py") == _LIBRARY
    assert kind(tdir, "nn", "functional.py") == _LIBRARY
    assert kind(tdir, "optim", "adam.py") == _LIBRARY
    assert kind(tdir, "functional.py") == _LIBRARY
    for plumbing in (("_ops.py",), ("utils", "_contextlib.py"), ("overrides.py",), ("autograd", "function.py")):
        assert kind(tdir, *plumbing) == _SKIP, plumbing
    assert kind(tdir, "nn", "modules", "module.py") == _SKIP  # the module call machinery
    assert kind(libs[0], "transformers", "models", "bert", "modeling_bert.py") == _LIBRARY
    assert kind(libs[0], "transformers", "utils", "generic.py") == _SKIP
    assert kind(std[0], "contextlib.py") == _SKIP
    assert kind(os.sep + "home", "me", "train.py") == _USER


def test_region_replays_through_the_core_interpreter():
    """A region is a core Graph run by opgraph.graph.interpret: same values as recorded, errors name the node."""
    from opgraph.graph import Graph, InterpretError, interpret

    def fn(x, w):
        h = torch.relu(x @ w)
        top = torch.topk(h, 2, dim=-1).values
        return top * 2 + h.sum(-1, keepdim=True)

    run = record(fn, (torch.randn(5, 8), torch.randn(8, 6)))
    ids = [n.id for n in run.graph.nodes if n.op != "input"]
    later = ids[len(ids) // 2 :]  # a region in the middle: earlier values come in as the graph's inputs
    runner = RegionRunner(run, later)
    assert isinstance(runner.graph, Graph) and len(runner.graph.inputs) == len(runner.ext) > 0
    assert {n.meta["origin"] for n in runner.graph.nodes} >= set(later)  # a getitem of an earlier op: an input
    assert set(runner.rules) >= {n.op for n in runner.graph.nodes if n.op != "input"}
    (out,) = interpret(runner.graph, runner.ext, runner.rules)
    last = runner.graph.nodes[runner.graph.outputs[0]].meta["origin"]
    torch.testing.assert_close(out, run.values[last])
    bad = dict(runner.rules)
    victim = next(n for n in runner.graph.nodes if n.op == "aten::mul")
    bad["aten::mul"] = lambda node, *v: (_ for _ in ()).throw(RuntimeError("boom"))
    with pytest.raises(InterpretError, match=rf"node {victim.meta['origin']} \(aten::mul\) from test_recorder.py:"):
        interpret(runner.graph, runner.ext, bad)


def test_elided_copy_replays_with_its_source_and_mutations_stay_local():
    def fn(x):
        y = x.clone()
        y.add_(1)
        return y * 2

    run = record(fn, torch.ones(4))
    clone = next(n for n in run.graph.nodes if n.op == "aten::clone")
    ids = [n.id for n in run.graph.nodes if n.op != "input"]
    runner = RegionRunner(run, ids, elide={clone.id: clone.inputs[0]})
    assert any(n.op == "elide" for n in runner.graph.nodes)
    runner()
    runner()
    assert torch.equal(run.values[clone.inputs[0]], torch.ones(4))  # the add_ wrote to a copy each time
