"""The tile configuration space with Apache TVM (``apache-tvm`` 0.27, extra ``tvm``; imported lazily).

A kernel is a TVM tensor expression (matmul, batched matmul or a direct NCHW conv2d with any stride and groups,
optionally with a fused epilogue: a bias, then ReLU / GELU / SiLU / sigmoid / tanh). A tile config ``(ti, tj, tk)`` splits the two output loops and the reduction loop, reorders them
to ``io jo ko ii ki ji`` and vectorises ``ji``. Config 0 is the default schedule (no split), measured alongside as
the normaliser. The graph of a kernel (node features) comes from the equivalent PyTorch module through
``from_module``.

The 24 tile config columns (TpuGraphs' kernel, output and input bounds, each 6 dims + sum + product):

* kernel_bounds (0-7): the loop tile ``(ti, tj, tk)``;
* output_bounds (8-15): the output tile (``(ti, tj)`` for matmul, ``(1, ti, tj)`` batched, ``(1, to, 1, tx)`` conv);
* input_bounds (16-23): the first input's tile (``(ti, tk)``, ``(1, ti, tk)``, ``(1, tc, kh, tx + kw - 1)``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from opgraph.perf.errors import MissingDependencyError, PerfError
from opgraph.perf.measure import MeasureSettings, measure_configs
from opgraph.perf.tpugraphs import FEATURE_VERSION, TILE_CONFIG_DIM, GraphRecord, load_or_build

log = logging.getLogger(__name__)

KERNEL_OPS = ("matmul", "batch_matmul", "conv2d")
#: Activations a kernel's epilogue can apply (after an optional bias); "" is a bias alone.
EPILOGUE_ACTIVATIONS = ("", "none", "relu", "relu6", "gelu", "silu", "sigmoid", "tanh")
L1_BYTES, L2_BYTES, L3_BYTES = 32 * 1024, 512 * 1024, 32 * 1024 * 1024


def require_tvm() -> Any:
    """Import TVM or raise :class:`MissingDependencyError` naming the ``tvm`` extra."""
    try:
        import tvm
    except ImportError as exc:
        raise MissingDependencyError(
            f"the tile space needs Apache TVM ({exc}); install it with `pip install 'opgraph[tvm]'` "
            "(package apache-tvm)"
        ) from exc
    return tvm


@dataclass(frozen=True)
class KernelSpec:
    """One tile-space kernel.

    Attributes:
        op: ``"matmul"``, ``"batch_matmul"`` or ``"conv2d"``.
        dims: matmul ``(M, N, K)``; batch_matmul ``(B, M, N, K)``; conv2d ``(N, C, H, W, O, KH, KW)``.
        epilogue: ``"none"``, ``"relu"``, ``"bias"`` or ``"bias_relu"`` (``"bias"``: the epilogue of most
            kernels extracted from real models, :mod:`opgraph.perf.kernels`).
            Also ``"gelu"``, ``"silu"``, ``"sigmoid"``, ``"tanh"``, each optionally after a bias (``"bias_gelu"``).
        stride: conv2d stride (both dims).
        groups: conv2d groups (``C`` = ``O``: depthwise).
    """

    op: str
    dims: tuple[int, ...]
    epilogue: str = "none"
    stride: int = 1
    groups: int = 1

    @property
    def name(self) -> str:
        """File-safe name, e.g. ``matmul_128x256x64_relu``, ``conv2d_1x32x33x33x32x3x3_s2_g32_bias_relu``."""
        extra = ("" if self.stride == 1 else f"_s{self.stride}") + ("" if self.groups == 1 else f"_g{self.groups}")
        return f"{self.op}_{'x'.join(map(str, self.dims))}{extra}_{self.epilogue}"

    @property
    def has_bias(self) -> bool:
        """Whether the epilogue adds a bias."""
        return self.epilogue.startswith("bias")

    @property
    def activation(self) -> str:
        """The epilogue's activation (``"none"``, ``"relu"``, ``"gelu"``, ...)."""
        act = self.epilogue.removeprefix("bias").removeprefix("_")
        if act not in EPILOGUE_ACTIVATIONS:
            raise PerfError(
                f"kernel epilogue {self.epilogue!r}: use [bias_]{'|'.join(EPILOGUE_ACTIVATIONS[1:])}, bias or none"
            )
        return act or "none"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{op, dims, epilogue, stride, groups}`` (:meth:`from_dict` reads it back)."""
        return {
            "op": self.op,
            "dims": list(self.dims),
            "epilogue": self.epilogue,
            "stride": self.stride,
            "groups": self.groups,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KernelSpec:
        """Inverse of :meth:`to_dict` (``stride`` and ``groups`` default to 1)."""
        if d.get("op") not in KERNEL_OPS or not isinstance(d.get("dims"), list):
            raise PerfError(f"kernel {d!r}: need op in {KERNEL_OPS} and a dims list; write it with KernelSpec.to_dict")
        return cls(
            str(d["op"]),
            tuple(int(v) for v in d["dims"]),
            str(d.get("epilogue", "none")),
            int(d.get("stride", 1)),
            int(d.get("groups", 1)),
        )

    def conv_output_hw(self) -> tuple[int, int]:
        """Output height and width of a conv2d (valid padding: pad the input to pad)."""
        _, _, h, w, _, kh, kw = self.dims
        return (h - kh) // self.stride + 1, (w - kw) // self.stride + 1

    def loop_extents(self) -> tuple[int, int, int]:
        """Extents of the (i, j, k) loops that a tile config splits."""
        if self.op == "matmul":
            m, n, k = self.dims
            return m, n, k
        if self.op == "batch_matmul":
            _, m, n, k = self.dims
            return m, n, k
        _, c, h, w, o, kh, kw = self.dims
        return o, self.conv_output_hw()[1], c // self.groups

    def flops(self) -> float:
        """Multiply-add FLOPs of the main computation."""
        if self.op == "matmul":
            m, n, k = self.dims
            return 2.0 * m * n * k
        if self.op == "batch_matmul":
            b, m, n, k = self.dims
            return 2.0 * b * m * n * k
        nb, c, h, w, o, kh, kw = self.dims
        oh, ow = self.conv_output_hw()
        return 2.0 * nb * o * oh * ow * (c // self.groups) * kh * kw

    def torch_module(self) -> tuple[Any, tuple[Any, ...]]:
        """An equivalent PyTorch module and example inputs (for the graph features)."""
        import torch
        from torch import nn

        s, g, has_bias = self.stride, self.groups, self.has_bias
        act_fn = {
            "relu": torch.relu,
            "relu6": nn.functional.relu6,
            "gelu": nn.functional.gelu,
            "silu": nn.functional.silu,
            "sigmoid": torch.sigmoid,
            "tanh": torch.tanh,
        }.get(self.activation)

        class Kernel(nn.Module):
            def __init__(self, op: str, dims: tuple[int, ...]) -> None:
                super().__init__()
                self.op = op
                if op == "conv2d":
                    self.conv = nn.Conv2d(dims[1], dims[4], (dims[5], dims[6]), stride=s, groups=g, bias=has_bias)
                else:
                    self.bias = nn.Parameter(torch.zeros(dims[-2])) if has_bias else None

            def forward(self, a: Any, b: Any = None) -> Any:
                y = self.conv(a) if self.op == "conv2d" else torch.matmul(a, b)
                if self.op != "conv2d" and self.bias is not None:
                    y = y + self.bias
                return act_fn(y) if act_fn is not None else y

        d = self.dims
        mod = Kernel(self.op, d)
        if self.op == "matmul":
            ex: tuple[Any, ...] = (torch.randn(d[0], d[2]), torch.randn(d[2], d[1]))
        elif self.op == "batch_matmul":
            ex = (torch.randn(d[0], d[1], d[3]), torch.randn(d[0], d[3], d[2]))
        else:
            ex = (torch.randn(d[0], d[1], d[2], d[3]),)
        return mod.eval(), ex


def generate_kernels(n: int, seed: int = 0, *, scale: float = 1.0) -> list[KernelSpec]:
    """``n`` distinct kernels cycling through matmul, batch_matmul and conv2d with random sizes and epilogues."""
    rng = np.random.default_rng(seed)
    out: list[KernelSpec] = []
    seen: set[str] = set()

    def sz(choices: tuple[int, ...]) -> int:
        return max(8, int(round(int(rng.choice(choices)) * scale / 8) * 8))

    tries = 0
    while len(out) < n and tries < 50 * n:
        tries += 1
        op = KERNEL_OPS[len(out) % 3]
        epi = str(rng.choice(["none", "relu", "bias_relu"]))
        if op == "matmul":
            dims: tuple[int, ...] = (sz((64, 128, 192, 256)), sz((64, 128, 192, 256)), sz((64, 128, 256)))
        elif op == "batch_matmul":
            dims = (int(rng.choice([2, 4])), sz((32, 64, 96, 128)), sz((32, 64, 96, 128)), sz((32, 64, 128)))
        else:
            k = int(rng.choice([1, 3]))
            hw = sz((16, 24, 32))
            dims = (1, sz((16, 32, 48)), hw + k - 1, hw + k - 1, sz((16, 32, 64)), k, k)
        spec = KernelSpec(op, dims, epi)
        if spec.name not in seen:
            seen.add(spec.name)
            out.append(spec)
    return out


def _te_activation(te: Any, act: str, v: Any) -> Any:
    """The TE expression of an epilogue activation of ``v``."""
    if act == "relu":
        return te.max(v, 0.0)
    if act == "relu6":
        return te.min(te.max(v, 0.0), 6.0)
    if act == "gelu":  # exact (erf) GELU, as torch's default
        return v * 0.5 * (1.0 + te.erf(v * 0.7071067811865476))
    if act == "silu":
        return v * te.sigmoid(v)
    if act == "sigmoid":
        return te.sigmoid(v)
    if act == "tanh":
        return te.tanh(v)
    return v


def _te_func(spec: KernelSpec) -> Any:
    require_tvm()
    from tvm import te

    d = spec.dims
    if spec.op == "matmul":
        m, n, k = d
        a = te.placeholder((m, k), name="A")
        b = te.placeholder((k, n), name="B")
        r = te.reduce_axis((0, k), name="k")
        c = te.compute((m, n), lambda i, j: te.sum(a[i, r] * b[r, j], axis=r), name="C")
        ins = [a, b]
        bias_shape: tuple[int, ...] = (n,)

        def bias_index(*idx: Any) -> Any:
            return (idx[-1],)

    elif spec.op == "batch_matmul":
        bt, m, n, k = d
        a = te.placeholder((bt, m, k), name="A")
        b = te.placeholder((bt, k, n), name="B")
        r = te.reduce_axis((0, k), name="k")
        c = te.compute((bt, m, n), lambda z, i, j: te.sum(a[z, i, r] * b[z, r, j], axis=r), name="C")
        ins = [a, b]
        bias_shape = (n,)

        def bias_index(*idx: Any) -> Any:
            return (idx[-1],)

    else:
        nb, ch, h, w, o, kh, kw = d
        st, cpg, opg = spec.stride, ch // spec.groups, o // spec.groups  # channels per group in / out
        oh, ow = spec.conv_output_hw()
        a = te.placeholder((nb, ch, h, w), name="A")
        b = te.placeholder((o, cpg, kh, kw), name="B")
        rc = te.reduce_axis((0, cpg), name="rc")
        ry = te.reduce_axis((0, kh), name="ry")
        rx = te.reduce_axis((0, kw), name="rx")
        c = te.compute(
            (nb, o, oh, ow),
            lambda z, f, y, x: te.sum(
                a[z, f // opg * cpg + rc, y * st + ry, x * st + rx] * b[f, rc, ry, rx], axis=[rc, ry, rx]
            ),
            name="C",
        )
        ins = [a, b]
        bias_shape = (o,)

        def bias_index(*idx: Any) -> Any:
            return (idx[1],)

    out = c
    act = spec.activation
    if spec.has_bias or act != "none":
        if spec.has_bias:
            bias = te.placeholder(bias_shape, name="bias")
            ins.append(bias)

        def epilogue(*idx: Any) -> Any:
            v = c(*idx) + bias[bias_index(*idx)] if spec.has_bias else c(*idx)
            return _te_activation(te, act, v)

        out = te.compute(c.shape, epilogue, name="E")
    return te.create_prim_func(ins + [out]), [tuple(int(s) for s in t.shape) for t in ins + [out]]


def schedule(spec: KernelSpec, tile: tuple[int, int, int] | None) -> Any:
    """The scheduled IRModule of ``spec`` for tile ``(ti, tj, tk)`` (``None``: the default, untiled)."""
    tvm = require_tvm()
    func, _ = _te_func(spec)
    sch = tvm.s_tir.Schedule(func)
    if tile is None:
        return sch.mod
    ti, tj, tk = tile
    blk = sch.get_sblock("C")
    loops = sch.get_loops(blk)
    if spec.op == "matmul":
        i, j, k = loops
        outer: list[Any] = []
    elif spec.op == "batch_matmul":
        z, i, j, k = loops
        outer = [z]
    else:
        z, f, y, x, rc, ry, rx = loops
        i, j, k = f, x, rc
        outer = [z, y]
    io, ii = sch.split(i, [None, ti])
    jo, ji = sch.split(j, [None, tj])
    ko, ki = sch.split(k, [None, tk])
    if spec.op == "conv2d":
        sch.reorder(z, io, y, jo, ko, ry, rx, ii, ki, ji)
    else:
        sch.reorder(*outer, io, jo, ko, ii, ki, ji)
    if tj in (4, 8, 16, 32, 64) and spec.loop_extents()[1] % tj == 0:
        sch.vectorize(ji)
    return sch.mod


def tile_space(spec: KernelSpec) -> list[tuple[int, int, int]]:
    """Every power-of-two tile ``(ti, tj, tk)`` (1 to 256) within the kernel's loop extents, in lexicographic order."""
    ei, ej, ek = spec.loop_extents()

    def opts(e: int) -> list[int]:
        return [v for v in (1, 2, 4, 8, 16, 32, 64, 128, 256) if v <= e]

    return [(a, b, c) for a in opts(ei) for b in opts(ej) for c in opts(ek)]


def sample_tiles(spec: KernelSpec, n: int, rng: np.random.Generator) -> list[tuple[int, int, int] | None]:
    """``None`` (default schedule) then up to ``n - 1`` distinct power-of-two tiles within the loop extents."""
    space = tile_space(spec)
    idx = rng.permutation(len(space))[: max(0, n - 1)]
    return [None] + [space[i] for i in sorted(idx)]


def tile_config_row(spec: KernelSpec, tile: tuple[int, int, int] | None) -> np.ndarray:
    """The 24 config columns of one tile (the default schedule uses the full loop extents)."""
    ti, tj, tk = tile if tile is not None else spec.loop_extents()
    if spec.op == "matmul":
        outb, inb = [ti, tj], [ti, tk]
    elif spec.op == "batch_matmul":
        outb, inb = [1, ti, tj], [1, ti, tk]
    else:
        kw = spec.dims[6]
        outb, inb = [1, ti, 1, tj], [1, tk, spec.dims[5], (tj - 1) * spec.stride + kw]

    def block(v: list[int]) -> list[float]:
        return [float(x) for x in v] + [0.0] * (6 - len(v)) + [float(sum(v)), float(np.prod(v))]

    return np.asarray(block([ti, tj, tk]) + block(outb) + block(inb), dtype=np.float32)


def analytical_tile_cost(rec: GraphRecord) -> np.ndarray:
    """Cache-footprint model: FLOPs / vector efficiency x memory penalty of the tile working set (seconds, modelled).

    The working set ``4 (ti tk + tk tj + ti tj)`` bytes is compared with 32 KiB L1, 512 KiB L2 and 32 MiB L3; a
    ``tj`` that is not a multiple of 8 loses AVX2 lanes; small tiles pay loop overhead per iteration.
    """
    cf = rec.config_matrix().astype(np.float64)
    ti, tj, tk = cf[:, 0], cf[:, 1], cf[:, 2]
    k = rec.measure_meta.get("kernel")
    if k:
        spec = KernelSpec(k["op"], tuple(k["dims"]), k["epilogue"], int(k.get("stride", 1)), int(k.get("groups", 1)))
        flops = float(spec.flops())
    else:
        flops = float(cf[:, 7].max())
    ws = 4.0 * (ti * tk + tk * tj + ti * tj)
    mem = 1.0 + 1.0 * (ws > L1_BYTES) + 2.0 * (ws > L2_BYTES) + 4.0 * (ws > L3_BYTES)
    lanes = np.where(tj % 8 == 0, 8.0, np.where(tj % 4 == 0, 4.0, 1.0))
    overhead = 1.0 + 4.0 / np.maximum(tj, 1) + 2.0 / np.maximum(tk, 1)
    return flops / (2e9 * lanes) * mem * overhead


def _llvm_target(tvm: Any, mcpu: str | None) -> tuple[Any, dict[str, Any]]:
    """The LLVM target (``mcpu``: the host's CPU name when None) and its spec dict."""
    target_spec: dict[str, Any] = {"kind": "llvm"}
    if mcpu:
        target_spec["mcpu"] = mcpu
    else:
        host = tvm.get_global_func("tvm.codegen.llvm.GetHostCPUName", allow_missing=True)
        if host is not None:
            target_spec["mcpu"] = str(host())
    return tvm.target.Target(target_spec), target_spec


class TileRunner:
    """Compiles the tile schedules of one kernel on demand (cached) and runs them on fixed random inputs.

    Args:
        spec: The kernel.
        mcpu: LLVM CPU name (``None``: the host's).
    """

    def __init__(self, spec: KernelSpec, mcpu: str | None = None) -> None:
        tvm = require_tvm()
        self.spec = spec
        self.target, self.target_spec = _llvm_target(tvm, mcpu)
        _, shapes = _te_func(spec)
        dev = tvm.cpu()
        data_rng = np.random.default_rng(0)
        self.args = [tvm.runtime.tensor(data_rng.random(s, dtype=np.float32), dev) for s in shapes]
        self._fns: dict[tuple[int, int, int] | None, Any] = {}
        self._numbers: dict[tuple[Any, float], int] = {}
        self.compile_s = 0.0

    def function(self, tile: tuple[int, int, int] | None) -> Any:
        """The compiled function of ``tile`` (``None``: TVM's default schedule); compiled once."""
        if tile not in self._fns:
            tvm = require_tvm()
            t0 = time.perf_counter()
            self._fns[tile] = tvm.compile(schedule(self.spec, tile), target=self.target)["main"]
            self.compile_s += time.perf_counter() - t0
        return self._fns[tile]

    def thunk(self, tile: tuple[int, int, int] | None, number: int = 1) -> Any:
        """A no-argument callable running ``number`` executions of ``tile``'s kernel back to back."""
        f, args = self.function(tile), self.args
        if number <= 1:
            return lambda: f(*args)

        def run() -> None:
            for _ in range(number):
                f(*args)

        return run

    def number(self, tile: tuple[int, int, int] | None, min_ns: float) -> int:
        """Executions per timing so that one timing lasts at least ``min_ns`` of CPU time (calibrated once).

        The kernel is run once (warm-up), then timed three times (CPU time of the thread, the minimum kept);
        ``ceil(min_ns / t)`` executions, 1 to :data:`MAX_NUMBER`. TVM's ``time_evaluator`` does the same with
        its ``number`` and ``min_repeat_ms``: a 20 us kernel timed alone is at the mercy of one preemption or cache
        flush by another process; a timing of many back-to-back runs averages them out.
        """
        from opgraph.measure import cpu_ns

        key = (tile, float(min_ns))
        if key not in self._numbers:
            fn = self.thunk(tile)
            fn()
            t = min(cpu_ns(fn) for _ in range(3))
            self._numbers[key] = int(min(MAX_NUMBER, max(1, np.ceil(min_ns / max(t, 1)))))
        return self._numbers[key]


#: Most executions of a kernel per timing (:meth:`TileRunner.number`).
MAX_NUMBER = 10_000
#: CPU time one timing of a tile schedule lasts at least (:func:`measure_tiles`), ns.
MIN_TIMING_NS = 2_000_000


def measure_tiles(
    runner: Any,
    tiles: list[tuple[int, int, int] | None],
    *,
    settings: MeasureSettings | None = None,
    seed: int = 0,
    min_ns: float = MIN_TIMING_NS,
) -> Any:
    """Time tile schedules of one kernel robustly on a loaded machine; runtimes are per execution, ns.

    The protocol of :func:`opgraph.perf.measure.measure_configs` (CPU time of the thread, interleaved shuffled
    rounds, the minimum of ``settings.reps`` timings per round), where each timing runs the kernel
    :meth:`TileRunner.number` times back to back (at least ``min_ns`` of CPU time); the timings are divided by that
    number. The tuner, the exhaustive reference and the verification of the benchmark all measure this way.

    Args:
        runner: A :class:`TileRunner` (or any object with ``thunk(tile[, number])``; without a
            ``number(tile, min_ns)`` method every timing is one execution).
        tiles: The schedules (``None``: TVM's default); entry 0 is the reference.
        settings: Protocol knobs.
        seed: Seed of the round shuffles.
        min_ns: Least CPU time of one timing, ns (0: one execution per timing).

    Returns:
        A :class:`opgraph.perf.measure.Measurement` of per-execution runtimes; ``meta["number"]`` lists the
        executions per timing of each tile.
    """
    calibrate = getattr(runner, "number", None) if min_ns > 0 else None
    numbers = np.array([calibrate(t, min_ns) if calibrate else 1 for t in tiles], dtype=np.float64)

    def prepare(i: int) -> Any:
        return runner.thunk(tiles[i]) if numbers[i] == 1 else runner.thunk(tiles[i], int(numbers[i]))

    m = measure_configs(len(tiles), prepare, reference=0, settings=settings, seed=seed)
    meta = dict(m.meta, number=[int(n) for n in numbers], min_timing_ns=float(min_ns))
    meta["reference_runtime_ns_per_round"] = [v / numbers[0] for v in meta.get("reference_runtime_ns_per_round", [])]
    return dataclasses.replace(
        m,
        runtime_ns=np.rint(m.runtime_ns / numbers).astype(np.int64),
        rounds_ns=np.rint(m.rounds_ns / numbers[:, None]).astype(np.int64),
        std_ns=m.std_ns / numbers,
        normalizer_ns=np.rint(m.normalizer_ns / numbers[0]).astype(np.int64),
        meta=meta,
    )


def compile_tile(spec: KernelSpec, tile: tuple[int, int, int] | None, mcpu: str | None = None) -> Any:
    """Build and compile the schedule of ``spec`` with ``tile`` (``None``: TVM's default) for the LLVM CPU target.

    Returns:
        The compiled function; call it with TVM tensors of the inputs (``A``, ``B``, then ``bias`` if any) and the
        output, in the shapes of the kernel (as :class:`TileRunner` does).
    """
    tvm = require_tvm()
    target, _ = _llvm_target(tvm, mcpu)
    return tvm.compile(schedule(spec, tile), target=target)["main"]


def candidate_record(spec: KernelSpec, tiles: list[tuple[int, int, int] | None]) -> GraphRecord:
    """An unmeasured tile record of ``tiles`` (the cost models' input: node features and config columns)."""
    from opgraph.perf.collect import graph_of
    from opgraph.perf.features import node_features

    module, example = spec.torch_module()
    feat, opcode, edges = node_features(graph_of(module, example))
    return GraphRecord(
        name=spec.name,
        kind="tile",
        node_feat=feat,
        node_opcode=opcode,
        edge_index=edges,
        config_runtime=None,
        config_feat=np.stack([tile_config_row(spec, t) for t in tiles]).reshape(-1, TILE_CONFIG_DIM),
        measure_meta={
            "kernel": {
                "op": spec.op,
                "dims": list(spec.dims),
                "epilogue": spec.epilogue,
                "stride": spec.stride,
                "groups": spec.groups,
            },
            "tiles": [list(t) if t else None for t in tiles],
        },
    )


def tile_record(
    spec: KernelSpec,
    *,
    n_configs: int = 40,
    settings: MeasureSettings | None = None,
    seed: int = 0,
    mcpu: str | None = None,
) -> GraphRecord:
    """Compile and measure ``n_configs`` tile schedules of one kernel (config 0 = default = normaliser).

    Args:
        spec: The kernel.
        n_configs: Configs including the default.
        settings: Protocol knobs.
        seed: Seed of tile sampling and round shuffles.
        mcpu: LLVM CPU name (``None``: the host's, from ``llvm -mcpu`` detection).

    Returns:
        A tile :class:`GraphRecord` with normalisers, per-round runtimes and ``measure_meta``.
    """
    tvm = require_tvm()
    from opgraph.perf.collect import graph_of
    from opgraph.perf.features import node_features

    t0 = time.perf_counter()
    module, example = spec.torch_module()
    feat, opcode, edges = node_features(graph_of(module, example))
    rng = np.random.default_rng(seed)
    tiles = sample_tiles(spec, n_configs, rng)
    target_spec: dict[str, Any] = {"kind": "llvm"}
    if mcpu:
        target_spec["mcpu"] = mcpu
    else:
        host = tvm.get_global_func("tvm.codegen.llvm.GetHostCPUName", allow_missing=True)
        if host is not None:
            target_spec["mcpu"] = str(host())
    target = tvm.target.Target(target_spec)
    dev = tvm.cpu()
    _, shapes = _te_func(spec)
    data_rng = np.random.default_rng(0)
    args = [tvm.runtime.tensor(data_rng.random(s, dtype=np.float32), dev) for s in shapes]
    fns: list[Any] = []
    compile_s = time.perf_counter()
    for t in tiles:
        try:
            fns.append(tvm.compile(schedule(spec, t), target=target)["main"])
        except Exception as exc:  # noqa: BLE001 - a schedule TVM rejects is dropped, not fatal
            log.warning("%s: tile %s failed to compile: %s", spec.name, t, exc)
            fns.append(None)
    compile_s = time.perf_counter() - compile_s
    keep = [i for i, f in enumerate(fns) if f is not None]
    if 0 not in keep:
        raise PerfError(f"{spec.name}: the default schedule did not compile")
    tiles = [tiles[i] for i in keep]
    fns = [fns[i] for i in keep]

    def prepare(i: int) -> Any:
        f = fns[i]
        return lambda: f(*args)

    m = measure_configs(len(fns), prepare, reference=0, settings=settings, seed=seed)
    meta = dict(m.meta)
    meta.update(
        feature_version=FEATURE_VERSION,
        space="tile",
        graph=spec.name,
        kernel={
            "op": spec.op,
            "dims": list(spec.dims),
            "epilogue": spec.epilogue,
            "stride": spec.stride,
            "groups": spec.groups,
        },
        tiles=[list(t) if t else None for t in tiles],
        tvm=str(tvm.__version__),
        target=str(target_spec),
        compile_s=compile_s,
        collect_s=time.perf_counter() - t0,
    )
    return GraphRecord(
        name=spec.name,
        kind="tile",
        node_feat=feat,
        node_opcode=opcode,
        edge_index=edges,
        config_runtime=m.runtime_ns,
        config_feat=np.stack([tile_config_row(spec, t) for t in tiles]).reshape(-1, TILE_CONFIG_DIM),
        config_runtime_normalizers=m.normalizer_ns,
        config_runtime_std=m.std_ns,
        config_runtime_rounds=m.rounds_ns,
        measure_meta=meta,
    )


@dataclass(frozen=True)
class _TileTask:
    spec: KernelSpec
    path: str
    n_configs: int
    settings: MeasureSettings


def _tile_task(task: _TileTask, seed: int) -> dict[str, Any]:
    return load_or_build(
        task.path, lambda: tile_record(task.spec, n_configs=task.n_configs, settings=task.settings, seed=seed)
    )


def collect_tile(
    specs: list[KernelSpec],
    out_dir: str | Path,
    *,
    n_configs: int = 40,
    settings: MeasureSettings | None = None,
    executor: Any = "serial",
    seed: int = 0,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Measure the tile space of each kernel into ``out_dir/<name>.npz`` (existing files are skipped)."""
    from opgraph.parallel import map_tasks

    require_tvm()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s = settings or MeasureSettings()
    tasks = [_TileTask(sp, str(out / f"{sp.name}.npz"), n_configs, s) for sp in specs]
    return map_tasks(_tile_task, tasks, executor=executor, seed=seed, progress=progress, desc="tile kernels")
