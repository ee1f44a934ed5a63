"""Training steps: state restored between calls, backward ops at their forward lines, gradients compared."""

import copy
import inspect

import pytest
import torch
import torch.nn.functional as F

from opgraph import energy as oe
from opgraph.energy.cases import CASES
from opgraph.energy.errors import OutputMismatchError
from opgraph.energy.suite import evaluate_case

FAST = {"rounds": 3, "max_rounds": 3, "window_s": 0.0, "calibrate": False, "bisect": False}


def _setup():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 8))
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 16), torch.randint(0, 8, (8,))
    return model, opt, x, y


def _line(fn, marker):
    lines, start = inspect.getsourcelines(fn)
    return next(start + k for k, text in enumerate(lines) if marker in text)


def test_record_restores_the_model_and_links_backward_ops_to_forward_lines():
    model, opt, x, y = _setup()
    F.cross_entropy(model(x), y).backward()
    opt.step()  # Adam has state and .grad exists: both must come back unchanged
    before = copy.deepcopy(model.state_dict())
    grads = [p.grad.clone() for p in model.parameters()]
    opt_before = copy.deepcopy(opt.state_dict())

    def step(x, y):
        opt.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits, y)  # LOSS
        loss.backward()  # BACKWARD
        opt.step()
        return loss.detach()

    run = oe.record(step, (x, y))
    assert run.stateful and run.graph.meta["stateful"]
    assert [n for n, _g in run.grads] == [f"model.{n}" for n, _p in model.named_parameters()]
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
    after = opt.state_dict()
    for k, st in opt_before["state"].items():
        assert all(torch.equal(after["state"][k][n], v) for n, v in st.items())
    backward = [n for n in run.op_nodes() if n.meta.get("phase") == "backward"]
    assert backward and {"NllLossBackward0", "LogSoftmaxBackward0"} <= {n.meta["grad_fn"] for n in backward}
    loss_line, bw_line = _line(step, "# LOSS"), _line(step, "# BACKWARD")
    nll = [n for n in backward if n.meta["grad_fn"] == "NllLossBackward0"]
    assert all(n.meta["line"] == loss_line for n in nll)
    assert all(n.meta["backward_callsite"].endswith(f":{bw_line} in step") for n in nll)
    linear_bw = [n for n in backward if n.meta["grad_fn"] == "AddmmBackward0"]
    assert linear_bw and {n.meta["module_path"] for n in linear_bw} == {"model.0", "model.2"}


def test_forward_only_callable_is_not_stateful():
    model, _opt, x, _y = _setup()
    run = oe.record(model, x)
    assert not run.stateful and run.grads == ()


def test_training_diff_finds_the_loss_and_leaves_the_model(work_backend):
    case = CASES["train-loss-manual"]
    res = evaluate_case(case, work_backend, rounds=3, baselines=False, keep_report=True)
    assert res.error is None and res.top1 and res.category == "api_misuse"
    assert res.report["outputs"]["grads_compared"] == 6


def test_diff_leaves_the_model_as_it_was(work_backend):
    model, opt, x, y = _setup()
    before = copy.deepcopy(model.state_dict())

    def a(x, y):
        opt.zero_grad()
        loss = -model(x).log_softmax(-1).gather(1, y[:, None]).mean()
        loss.backward()
        opt.step()
        return loss.detach()

    def b(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    rep = oe.diff(a, b, (x, y), backend=work_backend, **FAST)
    assert rep.outputs["grads_compared"] == 4 and rep.outputs["agree"]
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert len(opt.state) == 0 and all(p.grad is None for p in model.parameters())


def test_gradients_that_differ_are_a_mismatch():
    model, opt, x, y = _setup()

    def a(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss.detach()

    def b(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        (2 * loss).backward()  # same output, twice the gradient
        return loss.detach()

    with pytest.raises(OutputMismatchError):
        oe.diff(a, b, (x, y), backend="time", **FAST)


@pytest.mark.parametrize("cid", ["train-zero-grad-keep", "train-accum-clone"])
def test_training_cases_are_found(cid, work_backend):
    res = evaluate_case(CASES[cid], work_backend, rounds=3, baselines=False)
    assert res.error is None and res.detected and res.category == CASES[cid].category


def test_profile_a_training_step():
    model, opt, x, y = _setup()

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    prof = oe.profile(step, (x, y), backend="time", window_s=0.0005, rounds=1)
    ops = {r["op"] for r in prof.rows}
    assert {"aten::addmm", "aten::mm", "aten::threshold_backward"} <= ops
    assert len(opt.state) == 0


def test_library_culprit_sites_and_optional_cases(monkeypatch):
    import importlib.util

    from opgraph.energy import suite

    sites = ("masking_utils.py:sdpa_mask",)
    assert suite._hit(["/x/transformers/masking_utils.py:530 in sdpa_mask"], set(), sites)
    assert not suite._hit(["/x/transformers/masking_utils.py:530 in eager_mask"], set(), sites)
    assert suite._hit(["cases.py:12 in a (backward)"], {12})
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "transformers" else real(name))
    ids = suite.case_ids()
    assert "hf-gpt2-eager-attn" not in ids and "nn-encoder-slow-path" in ids


def test_real_library_case_names_a_library_line(work_backend):
    pytest.importorskip("transformers")
    res = evaluate_case(CASES["hf-gpt2-eager-attn"], work_backend, rounds=3, baselines=False)
    assert res.error is None and res.top1 and res.category == "api_misuse"
    top = res.findings[0]
    assert top["callsites"][0].startswith("cases.py:")  # the user's line: where the case calls the model
    assert "/transformers/" in top["lib_file"] or "/torch/nn/" in top["lib_file"]  # and the library's own line
    assert any(".py:" in s and "cases.py" not in s for s in top["lib_sites"])


def test_training_step_over_the_snapshot_limit_is_re_run():
    model, opt, x, y = _setup()
    before = copy.deepcopy(model.state_dict())

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    rep = oe.diff(step, step, (x, y), backend="model", snapshot_limit_bytes=1000, **FAST)
    assert any("re-running" in n for n in rep.notes) and rep.regions
    assert all(r.pair.extra["method"].startswith("re-run") for r in rep.regions)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()) and len(opt.state) == 0


def test_state_too_large_to_copy_is_detected_not_restored(caplog, monkeypatch):
    from opgraph.energy import recorder

    monkeypatch.setattr(recorder, "STATE_LIMIT_BYTES", 100)
    model, opt, x, y = _setup()

    def step(x, y):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        return model(x)

    run = oe.record(step, (x, y), snapshot_limit_bytes=100, timing_pass=False)
    assert run.stateful and not run.graph.meta["state_restored"]
    assert "not restored" in caplog.text
