"""Tile tuning logs (resume, killed runs, mismatches) and saved schedules (save, load, re-apply with TVM)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from opgraph._base.jsonio import read_json
from opgraph.perf.errors import PerfError
from opgraph.perf.measure import MeasureSettings
from opgraph.perf.tile import KernelSpec, tile_space
from opgraph.perf.tune import TileTuneResult, load_tile_schedules, save_tile_schedules, tune_tile

HAS_TVM = importlib.util.find_spec("tvm") is not None
FAST = MeasureSettings(rounds=2, reps=1, warmup=1)
SPEC = KernelSpec("matmul", (16, 16, 16), "bias")
BEST = (8, 16, 4)
KW = {"settings": FAST, "race_rounds": 6, "seed": 3}  # screening runs: 2 rounds; race runs: 3 rounds


def cost(tile):
    """Synthetic runtime of a tile (None: TVM's default schedule)."""
    if tile is None:
        return 10.0
    if tile == BEST:
        return 1.0
    far = sum(abs(np.log2(a) - np.log2(b)) for a, b in zip(tile, BEST))
    return 2.0 + far + tile[0] * 1e-3 + tile[1] * 1e-4 + tile[2] * 1e-5  # no ties


def key(row):
    return tuple(int(v) for v in row)


class Ranker:
    """A cost model that knows the synthetic cost."""

    def predict(self, rec):
        cf = rec.config_matrix()
        return np.array([cost(t) for t in [None] + [key(row[:3]) for row in cf[1:]]])


class FakeMeasurer:
    """Deterministic runtimes of rows [ti, tj, tk] ([0, 0, 0]: default); records every call; can fail on one."""

    def __init__(self, fail_at: int | None = None):
        self.calls: list[tuple[list[tuple[int, ...]], int]] = []
        self.fail_at = fail_at

    def __call__(self, choices, rounds, seed):
        if self.fail_at is not None and len(self.calls) + 1 == self.fail_at:
            raise RuntimeError("killed")
        rows = [key(r) for r in choices]
        self.calls.append((rows, rounds))
        ns = np.array([cost(None if not any(r) else r) * 1e6 for r in rows])
        return np.repeat(ns[:, None], rounds, axis=1)

    def screened(self) -> list[tuple[int, ...]]:
        """Configs measured in screening runs (2 rounds), the default left out."""
        return [r for rows, n in self.calls if n == FAST.rounds for r in rows[1:]]


@pytest.mark.parametrize(
    ("search", "stages"),
    [("screen", ["screen", "local"]), ("refit", ["screen", "refit", "local", "local", "local"])],
)
def test_resume_after_a_kill_skips_logged_configs_and_gives_the_same_choice(tmp_path, search, stages):
    kw = {**KW, "search": search}
    full_m = FakeMeasurer()
    full = tune_tile(SPEC, Ranker(), measurer=full_m, log_path=tmp_path / "full.json", **kw)
    n_screen = [len(rows) - 1 for rows, n in full_m.calls if n == FAST.rounds]
    assert len(n_screen) == len(stages) and full.n_measured == len(tile_space(SPEC)) // 10  # one run per batch
    assert full.tile == BEST and {m.stage for m in full.measured} == {"default", *stages}

    # killed after each batch's run (the last: in the race)
    for done in range(1, len(n_screen) + 1):
        fail_at, logged_configs = done + 1, 1 + sum(n_screen[:done])
        log = tmp_path / f"killed{fail_at}.json"
        with pytest.raises(RuntimeError, match="killed"):
            tune_tile(SPEC, Ranker(), measurer=FakeMeasurer(fail_at=fail_at), log_path=log, **kw)
        doc = read_json(log)  # strict JSON, atomically written
        assert doc["result"] is None and len(doc["measured"]) == logged_configs
        logged = {key(m["choice"]) for m in doc["measured"]}

        again = FakeMeasurer()
        res = tune_tile(SPEC, Ranker(), measurer=again, log_path=log, **kw)
        assert not set(again.screened()) & logged  # nothing logged is measured again
        assert len(again.screened()) == full.n_measured - logged_configs
        assert res.tile == full.tile and not res.resumed
        assert [key(m.choice) for m in res.measured] == [key(m.choice) for m in full.measured]
        assert [m.ratio for m in res.measured] == pytest.approx([m.ratio for m in full.measured])

        never = FakeMeasurer()
        back = tune_tile(SPEC, Ranker(), measurer=never, log_path=log, **kw)
        assert never.calls == [] and back.resumed and back.tile == res.tile and back.spec == SPEC
        assert back.speedup == pytest.approx(res.speedup) and back.n_measured == res.n_measured


def test_a_log_of_another_kernel_or_other_settings_is_refused(tmp_path):
    log = tmp_path / "log.json"
    with pytest.raises(RuntimeError):
        tune_tile(SPEC, Ranker(), measurer=FakeMeasurer(fail_at=2), log_path=log, **KW)
    before = log.read_text()
    other = KernelSpec("matmul", (16, 16, 16), "bias_relu")
    cases = [
        ("kernel", dict(KW), other),
        ("race_rounds", {**KW, "race_rounds": 8}, SPEC),
        ("settings", {**KW, "settings": MeasureSettings(rounds=2, reps=2, warmup=1)}, SPEC),
        ("seed", {**KW, "seed": 4}, SPEC),
        ("search", {**KW, "search": "screen"}, SPEC),
        ("batches", {**KW, "batches": 4}, SPEC),
        ("candidates", {**KW, "candidates": tile_space(SPEC)[:50]}, SPEC),
    ]
    for name, kw, spec in cases:
        m = FakeMeasurer()
        with pytest.raises(PerfError, match=f"log_path=.*\\({name} differs") as err:
            tune_tile(spec, Ranker(), measurer=m, log_path=log, **kw)
        assert "\n" not in str(err.value) and m.calls == []
    assert log.read_text() == before  # a refused log is left alone
    layout_log = tmp_path / "layout.json"
    layout_log.write_text(json.dumps({"format": "opgraph-tune-log", "measured": []}))
    with pytest.raises(PerfError, match="not an opgraph-tile-tune-log"):
        tune_tile(SPEC, Ranker(), measurer=FakeMeasurer(), log_path=layout_log, **KW)


def test_saved_schedules_round_trip(tmp_path):
    res = tune_tile(SPEC, Ranker(), measurer=FakeMeasurer(), **KW)
    assert res.tile == BEST
    path = res.save(tmp_path / "one.json")
    assert load_tile_schedules(path) == {SPEC.name: (SPEC, BEST)}
    conv = KernelSpec("conv2d", (1, 8, 9, 9, 8, 3, 3), "bias_gelu", stride=2, groups=8)
    kept = TileTuneResult(conv.name, None, 10, 2, 5.0, 5.0, [], 0.1, 0.0, spec=conv)
    both = save_tile_schedules([res, kept], tmp_path / "two.json")
    assert load_tile_schedules(both) == {SPEC.name: (SPEC, BEST), conv.name: (conv, None)}
    assert TileTuneResult.from_dict(res.to_dict()).tile == res.tile
    with pytest.raises(PerfError, match="no kernel spec"):
        save_tile_schedules([TileTuneResult("k", None, 1, 1, 1.0, 1.0, [], 0.0, 0.0)], tmp_path / "x.json")
    (tmp_path / "bad.json").write_text(json.dumps({"format": "opgraph-layout", "layout": {}}))
    with pytest.raises(PerfError, match="not a tile schedules file"):
        load_tile_schedules(tmp_path / "bad.json")
    with pytest.raises(PerfError):
        load_tile_schedules(tmp_path / "missing.json")


@pytest.mark.skipif(not HAS_TVM, reason="apache-tvm not installed (extra 'tvm')")
def test_reapplied_schedules_compute_what_pytorch_computes(tmp_path):
    import torch

    from opgraph.perf.tune import apply_tile_schedules

    mm = KernelSpec("matmul", (8, 16, 8), "bias_relu")
    dw = KernelSpec("conv2d", (1, 4, 6, 6, 4, 3, 3), "bias", groups=4)
    results = []
    for spec, pick in ((mm, (4, 8, 4)), (dw, (2, 4, 1))):

        def fake(choices, rounds, seed, pick=pick):
            return np.array([[1.0 if key(r) == pick else 3.0] * rounds for r in choices]) * 1e6

        cands = [pick, (1, 1, 1), (2, 2, 1)]
        res = tune_tile(spec, Ranker(), candidates=cands, measure_frac=1.0, measurer=fake, **KW)
        assert res.tile == pick
        results.append(res)
    fns = apply_tile_schedules(save_tile_schedules(results, tmp_path / "s.json"))

    import tvm

    rng = np.random.default_rng(0)
    a, b, bias = (rng.standard_normal(s).astype(np.float32) for s in ((8, 8), (8, 16), (16,)))
    out = tvm.runtime.tensor(np.zeros((8, 16), np.float32))
    fns[mm.name](*(tvm.runtime.tensor(v) for v in (a, b, bias)), out)
    want = torch.relu(torch.from_numpy(a) @ torch.from_numpy(b) + torch.from_numpy(bias)).numpy()
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-5, atol=1e-5)

    x, w, bias = (rng.standard_normal(s).astype(np.float32) for s in ((1, 4, 6, 6), (4, 1, 3, 3), (4,)))
    out = tvm.runtime.tensor(np.zeros((1, 4, 4, 4), np.float32))
    fns[dw.name](*(tvm.runtime.tensor(v) for v in (x, w, bias)), out)
    want = torch.nn.functional.conv2d(*(torch.from_numpy(v) for v in (x, w, bias)), groups=4).numpy()
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-5, atol=1e-5)
