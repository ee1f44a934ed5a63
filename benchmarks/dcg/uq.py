"""Real uncertainty-quantification programs: opgraph.dcg against Monte Carlo, Sobol QMC and OpenTURNS.

Run:  OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/dcg/uq.py [--quick] [--only ID,ID] [--limit 60]

Cases: VLSE functions from ``uqtestfuns`` (their own ``evaluate`` code is traced: it indexes ``xx[:, k]``, which
here returns the k-th random input) with their input laws mapped onto opgraph.dcg laws, two 1,000-step ODEs
integrated by explicit Euler in a Python loop (tracing unrolls them), and a 4-16-1 tanh MLP on a Normal input
vector. Every case gets a deterministic high-precision reference: a closed form where one exists (the sulfur
model is a product of LogNormals), else 4 independent scrambles of 2**20 Sobol points (2**22 in all) compressed to
2**14 equal-mass atoms; the reference's own error (inter-scramble spread / sqrt(8) plus the exact compression
cost) is recorded beside it. References are cached in ``benchmarks/dcg/uq_references.json``.

Accuracy is relative: eps x (output std). Writes the section "Real UQ programs" of docs/benchmarks/dcg.md (between
markers, so benchmarks/dcg/run.py keeps it) and docs/benchmarks/dcg_uq.json.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from opgraph import dcg as od
from opgraph._base.fileio import replace_marked_block
from opgraph._base.jsonio import write_json

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _read_results(path: Path) -> Any:
    """A results JSON with the strict writer's ``"Infinity"``/``"NaN"`` strings turned back into floats."""

    def back(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: back(x) for k, x in v.items()}
        if isinstance(v, list):
            return [back(x) for x in v]
        return _NONFINITE.get(v, v) if isinstance(v, str) else v

    return back(json.loads(Path(path).read_text()))


ROOT = Path(__file__).resolve().parents[2]
REF_CACHE = Path(__file__).with_name("uq_references.json")
REF_VERSION = 2
REF_LOG2_POINTS = 22  # per scramble
REF_SCRAMBLES = 4
REF_ATOMS = 2**16
MARK_BEGIN = "<!-- uq:begin (written by benchmarks/dcg/uq.py) -->"
MARK_END = "<!-- uq:end -->"
#: Hand-written text between these lines (inside the section) is kept by the report writer.
NOTES_BEGIN = "<!-- uq:notes:begin (hand-written; uq.py --report-only keeps the text between these lines) -->"
NOTES_END = "<!-- uq:notes:end -->"
EPS = (1e-2, 1e-3)
#: Further target_w1 calls, each made only where the call before it certified its eps (a program that meets
#: 1e-3 is asked for 3e-4, then 1e-4): they feed the *ahead of Monte Carlo* table, not the target columns.
DEEPER_EPS = (3e-4, 1e-4)
#: Accuracies (relative to std) of the "ahead of Monte Carlo where it is slow" comparison (issue 14 section 6).
EPS_SLOW = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4)
#: MC counts as slow at eps where its expected time to eps exceeds this (CPU s).
MC_SLOW_S = 0.1
#: Cases evaluated with ``od.evaluate(..., truncate=p)`` (each unbounded input cut to its [p, 1-p] quantiles).
TRUNCATED = {"Borehole": 1e-9, "Undamped": 1e-9}


# ---------------------------------------------------------------------------------------------------------------
# Input laws
@dataclass(frozen=True)
class Law:
    """One input marginal, with its opgraph.dcg, SciPy, NumPy-sampler and OpenTURNS forms.

    ``kind`` is ``"uniform"`` (params low, high), ``"normal"`` (mu, sigma) or ``"lognormal"`` (mu, sigma of the
    underlying Normal).
    """

    kind: str
    params: tuple[float, ...]

    def dcg(self) -> Any:
        a, b = self.params
        if self.kind == "uniform":
            return od.Uniform(a, b)
        if self.kind == "normal":
            return od.Normal(a, b)
        if self.kind == "lognormal":
            return od.LogNormal(a, b)
        raise ValueError(f"law kind {self.kind!r} has no opgraph.dcg mapping")

    def scipy(self) -> Any:
        import scipy.stats as st

        a, b = self.params
        if self.kind == "uniform":
            return st.uniform(a, b - a)
        if self.kind == "normal":
            return st.norm(a, b)
        if self.kind == "lognormal":
            return st.lognorm(b, scale=math.exp(a))
        raise ValueError(self.kind)

    def sample(self, g: np.random.Generator, n: int) -> np.ndarray:
        a, b = self.params
        if self.kind == "uniform":
            return g.uniform(a, b, n)
        if self.kind == "normal":
            return g.normal(a, b, n)
        return g.lognormal(a, b, n)

    def openturns(self) -> Any:
        import openturns as ot

        a, b = self.params
        if self.kind == "uniform":
            return ot.Uniform(a, b)
        if self.kind == "normal":
            return ot.Normal(a, b)
        return ot.LogNormal(a, b)


def law_from_uqtf(marginal: Any) -> Law:
    """Map a ``uqtestfuns`` marginal onto a :class:`Law` (uniform, normal, lognormal; else ValueError)."""
    kind = str(marginal.distribution).lower()
    p = tuple(float(v) for v in marginal.parameters)
    if kind in ("uniform", "normal", "lognormal") and len(p) == 2:
        return Law(kind, p)
    raise ValueError(f"uqtestfuns marginal {marginal.name!r}: {kind}{p} has no mapping here")


# ---------------------------------------------------------------------------------------------------------------
# Cases
@dataclass
class UQCase:
    """One program: ``fn(*inputs)`` works on opgraph random inputs (traced) and on NumPy arrays (sampling)."""

    id: str
    title: str
    fn: Callable[..., Any]
    laws: list[Law]
    source: str
    exact: Callable[[], tuple[str, float, float, float]] | None = None  # ("neg_lognormal"|..., mu, sigma, scale)
    closed_moments: tuple[float, float] | None = None  # (mean, variance) when known in closed form
    spec: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    ref_log2: int | None = None  # points per reference scramble (default REF_LOG2_POINTS); smaller for long loops
    # Extra keywords of every od.evaluate call (the explicit truncation of inputs undefined only on a far tail)
    dcg_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def d(self) -> int:
        return len(self.laws)

    def dcg_inputs(self) -> list[Any]:
        return [law.dcg() for law in self.laws]

    def evaluate(self, **kw: Any) -> Any:
        """``od.evaluate`` of the case (with its ``dcg_kwargs``, such as ``truncate``)."""
        return od.evaluate(self.fn, *self.dcg_inputs(), **{**self.dcg_kwargs, **kw})

    def numpy(self, cols: Sequence[np.ndarray]) -> np.ndarray:
        return np.asarray(self.fn(*cols), dtype=float) * np.ones(len(cols[0]))


class _Columns:
    """``xx[:, k]`` returns the k-th value: lets a ``uqtestfuns`` evaluate() run on traced random inputs."""

    def __init__(self, cols: Sequence[Any]) -> None:
        self.cols = cols

    def __getitem__(self, key: Any) -> Any:
        if not (isinstance(key, tuple) and len(key) == 2 and key[0] == slice(None)):
            raise TypeError(f"only xx[:, k] indexing is supported, got {key!r}")
        return self.cols[key[1]]


def uqtf_case(cid: str, name: str, title: str) -> UQCase:
    """A case from a ``uqtestfuns`` test function (its evaluate() code and input laws)."""
    try:
        import uqtestfuns as uqtf
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SystemExit("uqtestfuns is missing: pip install 'opgraph[bench]'") from exc
    f = getattr(uqtf, name)()
    ev = f._evaluate
    params = dict(f.parameters.items()) if f.parameters is not None else {}
    laws = [law_from_uqtf(m) for m in f.prob_input.marginals]

    def fn(*x: Any) -> Any:
        return ev(_Columns(x), **params)

    spec = f"uqtestfuns {uqtf.__version__ if hasattr(uqtf, '__version__') else ''} {name} {params} {laws}"
    return UQCase(cid, title, fn, laws, f"uqtestfuns.{name} ({f.prob_input.name})", spec=spec, extra={"uqtf": f})


def _sulfur_exact(case: UQCase) -> Callable[[], tuple[str, float, float, float]]:
    """The sulfur forcing is -C * prod X_i with LogNormal X_i: exactly -LogNormal(ln C + sum mu, sqrt(sum s^2))."""

    def exact() -> tuple[str, float, float, float]:
        c = -float(case.numpy([np.ones(1)] * case.d)[0])
        mu = math.log(c) + sum(law.params[0] for law in case.laws)
        sigma = math.sqrt(sum(law.params[1] ** 2 for law in case.laws))
        return "neg_lognormal", mu, sigma, 1.0

    return exact


def ode_logistic(steps: int = 1000, t_end: float = 5.0) -> UQCase:
    """Logistic growth x' = r x (1 - x / K), explicit Euler, ``steps`` steps to ``t_end``."""
    h = t_end / steps

    def fn(r: Any, k: Any, x0: Any) -> Any:
        x = x0
        for _ in range(steps):
            x = x + h * r * x * (1 - x / k)
        return x

    laws = [Law("uniform", (0.5, 1.0)), Law("uniform", (80.0, 120.0)), Law("uniform", (5.0, 15.0))]
    return UQCase(
        "ODE-log",
        f"logistic growth, Euler {steps} steps",
        fn,
        laws,
        "x' = r x (1 - x/K), r~U(.5,1), K~U(80,120), x0~U(5,15), t=5",
        spec=f"ode-logistic {steps} {t_end} {laws}",
        ref_log2=20,
    )


def ode_oscillator(steps: int = 1000, t_end: float = 10.0) -> UQCase:
    """Damped oscillator x'' + 2 zeta w x' + w^2 x = 0, x(0) = x0, x'(0) = 0, semi-implicit Euler; returns x(t)."""
    h = t_end / steps

    def fn(w: Any, zeta: Any, x0: Any) -> Any:
        x, v = x0, 0.0 * x0
        for _ in range(steps):
            v = v - h * (2 * zeta * w * v + w * w * x)
            x = x + h * v
        return x

    laws = [Law("uniform", (0.8, 1.2)), Law("uniform", (0.05, 0.15)), Law("normal", (1.0, 0.1))]
    return UQCase(
        "ODE-osc",
        f"damped oscillator, Euler {steps} steps",
        fn,
        laws,
        "x'' + 2 zeta w x' + w^2 x = 0, w~U(.8,1.2), zeta~U(.05,.15), x0~N(1,.1), t=10",
        spec=f"ode-osc {steps} {t_end} {laws}",
        ref_log2=20,
    )


def mlp_case(n_in: int = 4, hidden: int = 16, seed: int = 1) -> UQCase:
    """A ``n_in``-``hidden``-1 tanh MLP with fixed random weights on a N(0, 1) input vector."""
    g = np.random.default_rng(seed)
    w1 = g.normal(0, 1 / math.sqrt(n_in), (hidden, n_in))
    b1 = g.normal(0, 0.1, hidden)
    w2 = g.normal(0, 1 / math.sqrt(hidden), hidden)
    b2 = float(g.normal(0, 0.1))

    def fn(*x: Any) -> Any:
        out: Any = b2
        for j in range(hidden):
            pre: Any = float(b1[j])
            for i in range(n_in):
                pre = pre + float(w1[j, i]) * x[i]
            out = out + float(w2[j]) * np.tanh(pre)
        return out

    laws = [Law("normal", (0.0, 1.0))] * n_in
    return UQCase(
        "MLP",
        f"MLP {n_in}-{hidden}-1 tanh",
        fn,
        laws,
        f"tanh MLP, weights N(0, 1/fan_in) seed {seed}, inputs N(0,1)",
        spec=f"mlp {n_in} {hidden} {seed}",
    )


def make_cases() -> list[UQCase]:
    """The suite (ordered by input count)."""
    cases = [
        uqtf_case("Ishigami", "Ishigami", "Ishigami (a=7, b=0.1)"),
        ode_logistic(),
        ode_oscillator(),
        mlp_case(),
        uqtf_case("OTL", "OTLCircuit", "OTL circuit"),
        uqtf_case("Undamped", "UndampedOscillator", "undamped oscillator (peak)"),
        uqtf_case("Piston", "Piston", "piston cycle time"),
        uqtf_case("DampedOsc", "DampedOscillator", "damped oscillator (rms)"),
        uqtf_case("Borehole", "Borehole", "borehole flow"),
        uqtf_case("Sulfur", "Sulfur", "sulfur forcing"),
        uqtf_case("WingWeight", "WingWeight", "wing weight"),
    ]
    a, b = 7.0, 0.1
    cases[0].closed_moments = (a / 2, a**2 / 8 + b * math.pi**4 / 5 + b**2 * math.pi**8 / 18 + 0.5)
    sulfur = next(c for c in cases if c.id == "Sulfur")
    sulfur.exact = _sulfur_exact(sulfur)
    # Undefined only far in a tail (borehole: r_w < 0 under a log, P = 3.2e-10, and r below r_w; undamped
    # oscillator: c1 + c2 <= 0 under sqrt and division, P < 1e-22): the explicit truncation, dropped mass reported.
    for c in cases:
        if c.id in TRUNCATED:
            c.dcg_kwargs["truncate"] = TRUNCATED[c.id]
            c.title += f" (truncate={TRUNCATED[c.id]:g})"
    return cases


# ---------------------------------------------------------------------------------------------------------------
# References
@dataclass
class Reference:
    """A reference law: equal-weight atoms (or a closed form), its mean, std, error and the EMCC constant."""

    atoms: np.ndarray
    mean: float
    std: float
    err: float
    note: str
    c_emcc: float
    exact: tuple[str, float, float, float] | None = None

    def w1(self, atoms: np.ndarray, weights: np.ndarray) -> float:
        """W1 from a discrete law to the reference (exact for closed forms; else to the reference atoms)."""
        atoms = np.asarray(atoms, float)
        weights = np.asarray(weights, float)
        if self.exact is not None:
            kind, mu, sigma, _ = self.exact
            assert kind == "neg_lognormal"
            order = np.argsort(-atoms)
            return float(od.w1_to_continuous(-atoms[order], weights[order], od.LogNormal(mu, sigma)))
        return float(od.w1_discrete(atoms, weights, self.atoms, np.ones(self.atoms.size)))


def sobol_inputs(case: UQCase, m: int, seed: int) -> list[np.ndarray]:
    """2**m scrambled Sobol points mapped through the inputs' quantile functions."""
    from scipy.stats import qmc

    u = qmc.Sobol(case.d, scramble=True, seed=seed).random_base2(m)
    u = np.clip(u, 1e-16, 1 - 1e-16)
    return [law.scipy().ppf(u[:, k]) for k, law in enumerate(case.laws)]


def _eval_chunked(case: UQCase, cols: list[np.ndarray], chunk: int = 2**18) -> np.ndarray:
    n = cols[0].size
    return np.concatenate([case.numpy([c[i : i + chunk] for c in cols]) for i in range(0, n, chunk)])


def emcc_constant(sorted_atoms: np.ndarray, weights: np.ndarray | None = None) -> float:
    """c = sqrt(2/pi) * integral sqrt(F (1 - F)) of a discrete law (exact for the step CDF)."""
    x = np.asarray(sorted_atoms, float)
    w = np.full(x.size, 1.0 / x.size) if weights is None else np.asarray(weights, float) / np.sum(weights)
    f = np.cumsum(w)[:-1]
    return math.sqrt(2 / math.pi) * float(np.sum(np.diff(x) * np.sqrt(np.clip(f * (1 - f), 0, None))))


def compute_reference(
    case: UQCase,
    log2_points: int = REF_LOG2_POINTS,
    scrambles: int = REF_SCRAMBLES,
    atoms: int = REF_ATOMS,
    progress: bool = False,
) -> Reference:
    """The case's reference: closed form, or ``scrambles`` x 2**log2_points scrambled Sobol points.

    The sampled reference is the pooled sorted sample compressed to ``atoms`` equal-mass atoms at their group
    means. Its error estimate is the mean W1 between independent scrambles divided by sqrt(2 * scrambles) (one
    scramble's error, then pooling) plus the exact W1 cost of the compression.
    """
    if case.exact is not None:
        kind, mu, sigma, _ = case.exact()
        import scipy.stats as st

        law = st.lognorm(sigma, scale=math.exp(mu))
        q = -law.ppf((np.arange(atoms) + 0.5) / atoms)[::-1]
        mean, std = -float(law.mean()), float(law.std())
        c = math.sqrt(2 / math.pi) * float(
            np.trapezoid(
                np.sqrt(np.clip(law.cdf(g := np.linspace(*law.ppf([1e-12, 1 - 1e-12]), 400_001)), 0, 1) * law.sf(g)), g
            )
        )
        return Reference(q, mean, std, 0.0, "closed form: -LogNormal", c, (kind, mu, sigma, 1.0))
    reps = []
    for s in range(scrambles):
        y = _eval_chunked(case, sobol_inputs(case, log2_points, seed=1000 + s))
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{case.id}: the reference sample has non-finite values")
        reps.append(np.sort(y))
        if progress:
            print(f"  [{case.id}] reference scramble {s + 1}/{scrambles}", flush=True)
    pair = [float(np.mean(np.abs(reps[i] - reps[j]))) for i in range(scrambles) for j in range(i + 1, scrambles)]
    spread = float(np.mean(pair)) / math.sqrt(2 * scrambles)
    pooled = np.sort(np.concatenate(reps))
    groups = pooled.reshape(atoms, -1)
    q = groups.mean(axis=1)
    comp = float(np.mean(np.abs(groups - q[:, None])))
    mean, std = float(pooled.mean()), float(pooled.std())
    note = (
        f"{scrambles} x 2^{log2_points} scrambled Sobol, {atoms} atoms (scramble spread {spread / std:.1e} std, "
        f"compression {comp / std:.1e} std)"
    )
    return Reference(q, mean, std, spread + comp, note, emcc_constant(pooled))


def _spec_key(case: UQCase, log2_points: int, scrambles: int, atoms: int) -> str:
    text = f"{REF_VERSION} {case.spec} {log2_points} {scrambles} {atoms} {case.exact is not None}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_atoms(x: np.ndarray) -> dict[str, Any]:
    """Sorted atoms as a compact JSON value: uint32 steps on a grid of (max - min) / 2**32, zlib, base64."""
    import base64
    import zlib

    lo, hi = float(x[0]), float(x[-1])
    step = (hi - lo) / (2**32 - 1) if hi > lo else 1.0
    q = np.round((x - lo) / step).astype(np.uint64)
    d = np.diff(q, prepend=np.uint64(0)).astype(np.uint32)
    return {
        "lo": lo,
        "step": step,
        "n": int(x.size),
        "delta_u32_zlib_b64": base64.b64encode(zlib.compress(d.tobytes(), 9)).decode(),
    }


def decode_atoms(v: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_atoms` (the grid step is far below the reference error)."""
    import base64
    import zlib

    d = np.frombuffer(zlib.decompress(base64.b64decode(v["delta_u32_zlib_b64"])), dtype=np.uint32)
    return v["lo"] + np.cumsum(d.astype(np.uint64)).astype(float) * v["step"]


def load_reference(
    case: UQCase, log2_points: int | None = None, scrambles: int = REF_SCRAMBLES, atoms: int = REF_ATOMS
) -> Reference:
    """The cached reference of ``case`` (computed and cached when missing or stale)."""
    log2_points = log2_points or case.ref_log2 or REF_LOG2_POINTS
    key = _spec_key(case, log2_points, scrambles, atoms)
    cache: dict[str, Any] = json.loads(REF_CACHE.read_text()) if REF_CACHE.exists() else {}
    hit = cache.get(case.id)
    if hit and hit.get("key") == key:
        exact = tuple(hit["exact"]) if hit.get("exact") else None
        return Reference(decode_atoms(hit["atoms"]), hit["mean"], hit["std"], hit["err"], hit["note"], hit["c"], exact)
    t0 = time.perf_counter()
    ref = compute_reference(case, log2_points, scrambles, atoms, progress=True)
    cache[case.id] = {
        "key": key,
        "mean": ref.mean,
        "std": ref.std,
        "err": ref.err,
        "note": ref.note,
        "c": ref.c_emcc,
        "exact": list(ref.exact) if ref.exact else None,
        "seconds": round(time.perf_counter() - t0, 1),
        "atoms": encode_atoms(ref.atoms),
    }

    write_json(REF_CACHE, cache, indent=None)
    return ref


# ---------------------------------------------------------------------------------------------------------------
# Timing helpers
class _Timeout(BaseException):
    """Raised by the alarm (a BaseException, so no ``except Exception`` inside the engine swallows it)."""


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout()


def limited(fn: Callable[[], Any], limit_s: float) -> tuple[str, float, Any]:
    """Run ``fn`` under a CPU-time limit: (status "ok"/"timeout"/"error: ...", CPU seconds, result).

    The limit counts this process's CPU seconds (``ITIMER_PROF``), so a loaded machine does not cause timeouts.
    """
    old = signal.signal(signal.SIGPROF, _alarm)
    signal.setitimer(signal.ITIMER_PROF, limit_s)
    t0 = time.process_time()
    try:
        out = fn()
        status = "ok"
    except _Timeout:
        out, status = None, "timeout"
    except Exception as exc:  # noqa: BLE001  (recorded in the table)
        out, status = None, f"error: {type(exc).__name__}: {str(exc)[:100]}"
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)
    return status, time.process_time() - t0, out


def timed_median(fn: Callable[[], Any], min_total: float = 0.25, max_reps: int = 200) -> tuple[float, Any]:
    """CPU seconds per call of ``fn`` and its last result.

    The process CPU clock ticks in 4 ms steps on this VM, so a call under ``min_total`` seconds is repeated until
    the repetitions add up to ``min_total`` (at most ``max_reps`` calls) and the mean is returned.
    """
    t0 = time.process_time()
    out = fn()
    total = time.process_time() - t0
    if total >= min_total:
        return total, out
    reps = 0
    t0 = time.process_time()
    while reps < max_reps:
        out = fn()
        reps += 1
        total = time.process_time() - t0
        if total >= min_total:
            break
    return total / reps, out


def fixed_call(case: UQCase, ref: Reference, atoms: int, values: dict[str, bool]) -> tuple[Any, float, float]:
    """One fixed-atoms call of ``case`` under the switches ``values`` (warnings silenced), for the A/B scripts.

    Returns:
        ``(result, CPU s of the call, true W1 of its answer against ref)``.
    """
    from opgraph.dcg import switches

    with switches.scope(values), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.process_time()
        r = case.evaluate(atoms=atoms, progress=False)
        cpu = time.process_time() - t0
    return r, cpu, ref.w1(r.atoms, r.weights)


def peak_mb(fn: Callable[[], Any], limit_s: float) -> tuple[float | None, bool]:
    """Peak traced memory (MiB, tracemalloc: NumPy buffers included) of one call, and whether it finished.

    A call stopped by the limit still reports the peak it reached until then (``(peak, False)``: a lower bound);
    an error gives ``(None, False)``.
    """
    tracemalloc.start()
    try:
        status, _, _ = limited(fn, limit_s)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if status == "ok":
        return peak / 2**20, True
    return (peak / 2**20, False) if status == "timeout" else (None, False)


# ---------------------------------------------------------------------------------------------------------------
# Methods
def dcg_row(case: UQCase, ref: Reference, limit_s: float, **kw: Any) -> dict[str, Any]:
    """One ``od.evaluate`` call: status, CPU time, bound, true W1 and how the answer was made."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status, t, r = limited(lambda: case.evaluate(**kw), limit_s)
    row: dict[str, Any] = {"status": status, "time_s": t}
    if r is None:
        return row
    if t < 0.2:  # below the clock's resolution: re-time by repetition (same call, deterministic result)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            row["time_s"], _ = timed_median(lambda: case.evaluate(**kw))
    w1 = ref.w1(r.atoms, r.weights)
    info = r.info
    row.update(
        {
            "bound": float(r.w1_bound),
            "w1": w1,
            "certified": bool(r.certified),
            "method": info.get("method", ""),
            "bound_method": info.get("bound_method", ""),
            "met": bool(info.get("target_met", math.isfinite(r.w1_bound))),
            "atoms_per_input": info.get("atoms_per_input", {}),
            "out_atoms": int(r.atoms.size),
            "w1_estimate": r.w1_estimate,
            "qmc_points": info.get("points"),
            "dropped_mass": float(getattr(r, "dropped_mass", 0.0)),
        }
    )
    return row


def run_dcg(case: UQCase, ref: Reference, limit_s: float, sweep_s: float, quick: bool) -> dict[str, Any]:
    """``target_w1 = eps * std`` for each eps, and a fixed-atoms sweep."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        limited(lambda: case.evaluate(atoms=2), limit_s)  # warm-up (tracing, caches)
    target = {}
    for eps in EPS:
        row = dcg_row(case, ref, limit_s, target_w1=eps * ref.std)
        row["eps"] = eps
        # Peak memory of every target call: a full call when it is short, else the peak reached in its first
        # limit/3 CPU s (tracemalloc slows the call 2-5x; marked partial, a lower bound).
        full = row["status"] == "ok" and row["time_s"] < limit_s / 3
        pk, done = peak_mb(lambda eps=eps: case.evaluate(target_w1=eps * ref.std), limit_s if full else limit_s / 3)
        row["peak_mb"], row["peak_partial"] = pk, not done
        target[str(eps)] = row
    prev = target[str(EPS[-1])]
    for eps in DEEPER_EPS:
        if prev["status"] != "ok" or not prev.get("certified") or not prev.get("met"):
            break
        prev = dcg_row(case, ref, limit_s, target_w1=eps * ref.std)
        prev["eps"] = eps
        target[str(eps)] = prev
    sweep = []
    spent = 0.0
    for n in [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024][: 4 if quick else None]:
        row = dcg_row(case, ref, limit_s, atoms=n)
        row["atoms"] = n
        sweep.append(row)
        spent += row["time_s"]
        if row["status"] != "ok" or spent > sweep_s or row["time_s"] > sweep_s / 4:
            break
    return {"target": target, "sweep": sweep}


def run_mc(case: UQCase, ref: Reference, budget_s: float, quick: bool) -> dict[str, Any]:
    """NumPy Monte Carlo: cost per sample, expected time to W1 = eps * std from the EMCC, one run's true W1."""
    g = np.random.default_rng(0)
    rows = []
    for n in [10**3, 10**4, 10**5] + ([] if quick else [10**6]):
        t, y = timed_median(lambda n=n: case.numpy([law.sample(g, n) for law in case.laws]))
        rows.append({"n": n, "time_s": t, "w1": ref.w1(np.sort(y), np.ones(n))})
        if t > budget_s:
            break
    last = rows[-1]
    per = last["time_s"] / last["n"]
    expected = {str(e): per * max(1.0, (ref.c_emcc / (e * ref.std)) ** 2) for e in EPS}
    samples = {str(e): max(1.0, (ref.c_emcc / (e * ref.std)) ** 2) for e in EPS}
    return {"rows": rows, "per_sample_s": per, "expected_s": expected, "samples": samples}


def _qmc_like(
    rows_fn: Callable[[int], tuple[float, np.ndarray]], ms: Sequence[int], ref: Reference, budget_s: float
) -> dict[str, Any]:
    rows = []
    for m in ms:
        status, _, out = limited(lambda m=m: rows_fn(m), budget_s * 4)
        if out is None:
            rows.append({"n": 2**m, "status": status})
            break
        t, y = out
        rows.append({"n": 2**m, "time_s": t, "w1": ref.w1(np.sort(y), np.ones(y.size))})
        if t > budget_s or rows[-1]["w1"] <= min(EPS) * ref.std / 4:
            break
    times = {}
    for e in EPS:
        ok = [r["time_s"] for r in rows if "w1" in r and r["w1"] <= e * ref.std]
        times[str(e)] = min(ok) if ok else None
    return {"rows": rows, "time_to": times}


def run_qmc(case: UQCase, ref: Reference, budget_s: float, quick: bool) -> dict[str, Any]:
    """Scrambled Sobol QMC (SciPy), one scramble per size: time to W1 <= eps * std."""

    def go(m: int) -> tuple[float, np.ndarray]:
        return timed_median(lambda: _eval_chunked(case, sobol_inputs(case, m, seed=7)))

    return _qmc_like(go, range(8, 15 if quick else 21, 2), ref, budget_s)


def run_openturns(case: UQCase, ref: Reference, budget_s: float, quick: bool) -> dict[str, Any] | None:
    """OpenTURNS: joint law + randomised Sobol low-discrepancy experiment + PythonFunction (vectorised)."""
    try:
        import openturns as ot
    except ImportError:
        return None
    ot.RandomGenerator.SetSeed(7)
    joint = ot.JointDistribution([law.openturns() for law in case.laws])
    func = ot.PythonFunction(case.d, 1, func_sample=lambda xs: case.numpy(list(np.asarray(xs).T)).reshape(-1, 1))

    def go(m: int) -> tuple[float, np.ndarray]:
        def once() -> np.ndarray:
            exp = ot.LowDiscrepancyExperiment(ot.SobolSequence(case.d), joint, 2**m, True)
            exp.setRandomize(True)
            return np.asarray(func(exp.generate())).reshape(-1)

        return timed_median(once)

    return _qmc_like(go, range(8, 15 if quick else 19, 2), ref, budget_s)


def retime(path: Path, args: Any) -> None:
    """Re-run the baselines and re-time the opgraph.dcg rows under 0.2 s of a results JSON (in place)."""
    from tqdm import tqdm

    res_all = _read_results(path)
    cases = {c.id: c for c in make_cases()}
    for cid in tqdm(list(res_all), desc="re-time"):
        case, res = cases[cid], res_all[cid]
        ref = load_reference(case)
        std = ref.std
        rows = [({"target_w1": float(k) * std}, r) for k, r in res["dcg"]["target"].items()]
        rows += [({"atoms": r["atoms"]}, r) for r in res["dcg"]["sweep"]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for kw, r in rows:
                if r.get("status") == "ok" and r["time_s"] < 0.2:
                    r["time_s"], _ = timed_median(lambda kw=kw, c=case: c.evaluate(**kw))
        res["numpy_mc"] = run_mc(case, ref, args.budget, args.quick)
        res["sobol_qmc"] = run_qmc(case, ref, args.budget, args.quick)
        res["openturns"] = run_openturns(case, ref, args.budget, args.quick)
        write_json(path, res_all)


def run_case(case: UQCase, args: Any) -> dict[str, Any]:
    ref = load_reference(case)
    res: dict[str, Any] = {
        "title": case.title,
        "inputs": case.d,
        "laws": sorted({law.kind for law in case.laws}),
        "source": case.source,
        "reference": {"note": ref.note, "mean": ref.mean, "std": ref.std, "err": ref.err, "c_emcc": ref.c_emcc},
    }
    res["dcg"] = run_dcg(case, ref, args.limit, args.sweep, args.quick)
    old = _read_results(Path(args.reuse_baselines)).get(case.id) if getattr(args, "reuse_baselines", "") else None
    if old is not None:  # the baselines of an earlier run on this machine (their rows carry their own times)
        res.update({k: old[k] for k in ("numpy_mc", "sobol_qmc", "openturns")})
        res["baselines_from"] = str(args.reuse_baselines)
        return res
    res["numpy_mc"] = run_mc(case, ref, args.budget, args.quick)
    res["sobol_qmc"] = run_qmc(case, ref, args.budget, args.quick)
    res["openturns"] = run_openturns(case, ref, args.budget, args.quick)
    return res


# ---------------------------------------------------------------------------------------------------------------
# Report
def fmt(x: Any, nd: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float | int):
        x = float(x)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf"
        if x == 0:
            return "0"
        if abs(x) < 1e-2 or abs(x) >= 1e5:
            return f"{x:.{nd - 1}e}"
        return f"{x:.0f}" if abs(x) >= 10**nd else f"{x:.{nd}g}"
    return str(x)


def _cert_time(row: dict[str, Any]) -> str:
    """The cell for a target_w1 row: its time when certified and met, else why not."""
    if row.get("status") != "ok":
        return "timeout" if row.get("status") == "timeout" else "error"
    if not row.get("certified"):
        return f"QMC fallback ({fmt(row['time_s'])} s)"
    if row.get("met"):
        return fmt(row["time_s"])
    return f"missed: {fmt(row['bound'] / row['eps'] / row['_std'])} x eps ({fmt(row['time_s'])} s)"


def _how(res: dict[str, Any]) -> str:
    """How the target_w1 calls answered, and up to which fixed atom count the grid stays certified."""
    kinds = []
    for r in (res["dcg"]["target"][str(e)] for e in EPS):
        if r.get("status") != "ok":
            kinds.append("timeout")
        elif not r["certified"]:
            kinds.append("QMC fallback")
        else:
            kinds.append("certified" if math.isfinite(r["bound"]) else "certified, inf")
    grid = [r["atoms"] for r in res["dcg"]["sweep"] if r.get("status") == "ok" and r["certified"]]
    tail = f"; grid up to {max(grid)} atoms/input" if grid else "; no certified grid"
    return " / ".join(kinds) + tail


def summarise(cid: str, res: dict[str, Any]) -> dict[str, Any]:
    """Per-case numbers for the table."""
    std = res["reference"]["std"]
    rows = [r for r in res["dcg"]["sweep"] + list(res["dcg"]["target"].values()) if r.get("status") == "ok"]
    cert = [r for r in rows if r["certified"]]
    finite = [r for r in cert if math.isfinite(r["bound"])]
    ratio = None
    if finite:
        best = min(finite, key=lambda r: r["bound"])  # the tightest certified answer measured
        ratio = best["bound"] / max(best["w1"], 1e-300)
        ref_limited = best["w1"] < 2 * res["reference"]["err"]
        ratio_w1 = best["w1"] / std
        best_bound = best["bound"] / std
    else:
        ratio_w1 = best_bound = None
        ref_limited = False
    for r in res["dcg"]["target"].values():
        r["_std"] = std
    coverage = all(r["bound"] + res["reference"]["err"] >= r["w1"] for r in finite)
    peaks = [
        (r["peak_mb"], bool(r.get("peak_partial")))
        for r in res["dcg"]["target"].values()
        if r.get("peak_mb") is not None
    ]
    top = max(peaks) if peaks else None
    return {
        "finite": bool(finite),
        "ratio": ratio,
        "ref_limited": ref_limited,
        "best_bound_rel": best_bound,
        "best_w1_rel": ratio_w1,
        "coverage": coverage,
        "fallback": any(not r["certified"] for r in rows),
        "peak_mb": top[0] if top else None,
        "peak_partial": top[1] if top else False,
    }


def _notes(path: Path) -> list[str]:
    """The hand-written lines kept between :data:`NOTES_BEGIN` and :data:`NOTES_END` (markers included)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    i = text.find(NOTES_BEGIN)
    j = text.find(NOTES_END, i) if i >= 0 else -1
    if i < 0 or j < 0:
        return [NOTES_BEGIN, NOTES_END]
    return text[i : j + len(NOTES_END)].splitlines()


def mc_w1_at(res: dict[str, Any], time_s: float) -> float:
    """Monte Carlo's expected W1 after ``time_s`` CPU s (EMCC: c / sqrt(n), n = time / NumPy cost per sample)."""
    n = max(1.0, time_s / res["numpy_mc"]["per_sample_s"])
    return res["reference"]["c_emcc"] / math.sqrt(n)


def _ok_rows(res: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    rows = [(f"target {k}", r) for k, r in res["dcg"]["target"].items()]
    rows += [(f"atoms={r['atoms']}", r) for r in res["dcg"]["sweep"]]
    return [(name, r) for name, r in rows if r.get("status") == "ok"]


def answers_per_second(res: dict[str, Any]) -> list[tuple[int, float, bool]]:
    """(atoms, true W1 / MC's expected W1 at the same CPU time, ref-limited) of each certified fixed-atoms row."""
    err = res["reference"]["err"]
    return [
        (r["atoms"], r["w1"] / mc_w1_at(res, r["time_s"]), r["w1"] < 2 * err)
        for r in res["dcg"]["sweep"]
        if r.get("status") == "ok" and r["certified"]
    ]


def time_to_eps(res: dict[str, Any], eps: float, kind: str) -> tuple[float, str] | None:
    """The cheapest measured call whose answer meets ``eps * std``: (CPU s, which call), or None.

    ``kind="bound"``: certified with a finite bound <= eps std (target_w1 or fixed-atoms calls). ``kind="true"``:
    true W1 <= eps std, any answer of ``od.evaluate`` (a QMC fallback included, named so).
    """
    std = res["reference"]["std"]
    hits = []
    for name, r in _ok_rows(res):
        if kind == "bound":
            good = r["certified"] and math.isfinite(r["bound"]) and r["bound"] <= eps * std
        else:
            good = r["w1"] <= eps * std
        if good:
            hits.append((r["time_s"], name + ("" if r["certified"] else ", QMC fallback")))
    return min(hits) if hits else None


def mc_time_to(res: dict[str, Any], eps: float) -> float:
    """Monte Carlo's expected CPU s to W1 = eps * std (EMCC samples at the measured NumPy cost per sample)."""
    c, std = res["reference"]["c_emcc"], res["reference"]["std"]
    return res["numpy_mc"]["per_sample_s"] * max(1.0, (c / (eps * std)) ** 2)


def section6_lines(results: dict[str, Any]) -> list[str]:
    """Issue 14 section 6: better answers per second, and time to eps where Monte Carlo is slow."""
    lines = [
        "### Against Monte Carlo at equal CPU time (issue 14 section 6)",
        "",
        "*Better answers per second*: for each certified fixed-atoms row, its TRUE W1 over Monte Carlo's expected "
        "W1 after the same CPU time (EMCC: c / sqrt(n), n = CPU s / measured NumPy cost per sample, c as above). "
        "Below 1 our answer is closer than MC's at that time; the target is <= 0.1 on the median case. *best* is "
        "the smallest ratio over the case's sweep; * marks a ref-limited row (true W1 below twice the reference "
        "error: the ratio may be lower).",
        "",
        "| case | NumPy s / sample | true W1 / MC W1 at equal CPU, per sweep row (atoms: ratio) | best (atoms) |",
        "|---|---|---|---|",
    ]
    bests, lasts = [], []
    for cid, res in results.items():
        aps = answers_per_second(res)
        cells = ", ".join(f"{n}: {fmt(v)}{'*' if lim else ''}" for n, v, lim in aps)
        if aps:
            n_b, v_b, lim_b = min(aps, key=lambda a: a[1])
            bests.append(v_b)
            lasts.append(aps[-1][1])
            best = f"{fmt(v_b)}{'*' if lim_b else ''} ({n_b})"
        else:
            best = "–"
        lines.append(f"| {cid} | {fmt(res['numpy_mc']['per_sample_s'])} | {cells or '–'} | {best} |")
    med = float(np.median(bests)) if bests else math.nan
    lines += [
        "",
        f"- answers per second: median over {len(bests)} cases of the best ratio {fmt(med)} (target <= 0.1: "
        f"{'met' if med <= 0.1 else 'not met'}); {sum(b <= 0.1 for b in bests)}/{len(bests)} cases reach <= 0.1 "
        f"somewhere, {sum(b <= 1 for b in bests)}/{len(bests)} beat MC (< 1) somewhere; ratio at each case's largest "
        f"sweep row: median {fmt(float(np.median(lasts)) if lasts else None)}.",
        "",
        f"*Ahead of Monte Carlo where it is slow*: every (case, eps) with eps in "
        f"{', '.join(f'{e:g}' for e in EPS_SLOW)} where MC's expected time to W1 = eps std exceeds {MC_SLOW_S:g} s. "
        "*certified*: the cheapest measured call (target_w1 or fixed atoms) whose certified bound is <= eps std. "
        "*true error*: the cheapest measured call whose TRUE W1 is <= eps std (any answer, a QMC fallback named; "
        "(ref-limited) where eps std is below twice the reference error). Speed-up = MC expected s / ours. The "
        "cheapest call is picked after the fact, among the calls this run made (target_w1 calls at 3e-4 and 1e-4 "
        "only where the call at the eps above certified its target).",
        "",
        "| case | eps | MC expected s | certified: ours s (call) | speed-up | true error: ours s (call) | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    ups: dict[str, list[float]] = {"bound": [], "true": []}
    reached = {"bound": 0, "true": 0}
    for cid, res in results.items():
        err_rel = res["reference"]["err"] / res["reference"]["std"]
        for eps in EPS_SLOW:
            t_mc = mc_time_to(res, eps)
            if t_mc <= MC_SLOW_S:
                continue
            cells = []
            for kind in ("bound", "true"):
                hit = time_to_eps(res, eps, kind)
                if hit is None:
                    ups[kind].append(0.0)
                    cells += ["not reached", "–"]
                    continue
                reached[kind] += 1
                ups[kind].append(t_mc / hit[0])
                lim = " (ref-limited)" if kind == "true" and eps < 2 * err_rel else ""
                cells += [f"{fmt(hit[0])} ({hit[1]}){lim}", f"{fmt(t_mc / hit[0])}x"]
            lines.append(f"| {cid} | {eps:g} | {fmt(t_mc)} | {' | '.join(cells)} |")
    m = len(ups["bound"])

    def med_up(kind: str) -> str:
        return fmt(float(np.median(ups[kind]))) + "x" if ups[kind] else "–"

    lines += [
        "",
        f"- ahead where MC is slow, certified: median speed-up {med_up('bound')} over {m} (case, eps) pairs "
        f"(target >= 10x: {'met' if ups['bound'] and np.median(ups['bound']) >= 10 else 'not met'}); a certified "
        f"answer reached eps on {reached['bound']}/{m} (unreached pairs count as speed-up 0).",
        f"- the same with the TRUE error (not a certificate): median speed-up {med_up('true')}, eps reached on "
        f"{reached['true']}/{m}.",
        "",
    ]
    return lines


def write_markdown(results: dict[str, Any], args: Any) -> None:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        cpu = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "?")
    except OSError:
        cpu = "?"
    cmd = args.command or "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dcg/uq.py" + (" --quick" if args.quick else "")
    path = ROOT / "docs" / "benchmarks" / "dcg.md"
    lines = [
        MARK_BEGIN,
        "## Real UQ programs",
        "",
        *_notes(path),
        "",
        f"Command: `{cmd}`  ",
        f"Machine: {cpu}, {os.cpu_count()} cores shared with other jobs, Python {platform.python_version()}, "
        f"NumPy {np.__version__}. Date: {_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}. No GPU.  ",
        f"Per-call limit {args.limit:g} CPU s (then `timeout`); fixed-atoms sweeps 2, 4, 8, ... atoms per input "
        f"stop after {args.sweep:g} CPU s; times are process CPU seconds per call (this VM's CPU clock ticks in "
        "4 ms steps, so calls under 0.2-0.25 s are repeated until the repetitions add up to 0.25 s and the mean is "
        "reported; opgraph.dcg calls follow a 2-atom warm-up call of the same program).",
        *([args.note] if args.note else []),
        "",
        "Accuracy is relative: eps x (output std). *target* = `od.evaluate(fn, *inputs, target_w1=eps * std)`. "
        "*bound/true* is the tightest finite certified bound measured on the case (target or fixed-atoms sweep) "
        "over its true W1. *MC expected* = EMCC samples (c / (eps std))^2 at the measured NumPy cost per sample "
        "(c = sqrt(2/pi) integral sqrt(F(1-F)) of the reference). *QMC* / *OpenTURNS*: the first size 2^8, 2^10, "
        "... whose one scrambled Sobol (OpenTURNS: randomised Sobol, PythonFunction) sample has W1 <= eps std. "
        "*peak MiB*: tracemalloc peak of the target calls (a separate run; >= when a call took over 1/3 of the "
        "limit: the peak reached in its first limit/3 CPU s under tracemalloc). *ref err*: the reference's own W1 error (estimate) / std; *ref-limited*: the true W1 of that row is "
        "below twice the reference error, so the ratio is uncertain.",
        "",
        "| case | inputs | finite bound? | bound/true | target 1e-2 | target 1e-3 | certified or QMC fallback (target 1e-2 / 1e-3) "
        "| peak MiB | MC expected 1e-2 / 1e-3 (s) | QMC 1e-2 / 1e-3 (s) | OpenTURNS 1e-2 / 1e-3 (s) | ref err / std |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    summary = {}
    for cid, res in results.items():
        s = summarise(cid, res)
        summary[cid] = s
        tg = res["dcg"]["target"]
        mc = res["numpy_mc"]["expected_s"]
        qm = res["sobol_qmc"]["time_to"]
        ot_ = res["openturns"]["time_to"] if res.get("openturns") else None
        how = _how(res)
        lines.append(
            f"| {cid}: {res['title']} | {res['inputs']} ({', '.join(res['laws'])}) | {fmt(s['finite'])} "
            f"| {fmt(s['ratio'])}{' (ref-limited)' if s['ref_limited'] else ''} | {_cert_time(tg['0.01'])} | {_cert_time(tg['0.001'])} | {how} "
            f"| {'>= ' if s['peak_partial'] else ''}{fmt(s['peak_mb'])} | {fmt(mc['0.01'])} / {fmt(mc['0.001'])} | {fmt(qm['0.01'])} / {fmt(qm['0.001'])} "
            f"| {(fmt(ot_['0.01']) + ' / ' + fmt(ot_['0.001'])) if ot_ else '–'} "
            f"| {fmt(res['reference']['err'] / res['reference']['std'])} |"
        )
    ratios = [s["ratio"] for s in summary.values() if s["ratio"] is not None]
    fast2 = sum(
        1
        for res in results.values()
        if (r := res["dcg"]["target"]["0.01"]).get("certified") and r.get("met") and r["time_s"] <= 1
    )
    fast3 = sum(
        1
        for res in results.values()
        if (r := res["dcg"]["target"]["0.001"]).get("certified")
        and r.get("met")
        and r["time_s"] <= (1 if res["inputs"] <= 3 else 30)
    )
    n = len(results)
    lines += [
        "",
        "Against the issue's targets (measured today):",
        "",
        f"- finite: {sum(s['finite'] for s in summary.values())}/{n} cases have a finite certified bound at some "
        "setting. Every output here has a finite mean, or (borehole's Normal r_w under a log, the undamped "
        "oscillator's Normal m, c1, c2 under sqrt and division) is undefined only on an event of probability "
        "below 1e-9: the issue's explicit-truncation case.",
        f"- tight: bound/true median {fmt(float(np.median(ratios))) if ratios else '–'} over {len(ratios)} cases "
        f"with a finite bound, max {fmt(max(ratios)) if ratios else '–'} (target: median <= 3, none above 30).",
        f"- certified fast: eps = 1e-2 certified in <= 1 s on {fast2}/{n}; eps = 1e-3 within 1 s (<= 3 inputs) "
        f"/ 30 s (<= 10 inputs) on {fast3}/{n}.",
        f"- coverage (bound + ref err >= true W1 on every finite certified row): "
        f"{sum(s['coverage'] for s in summary.values())}/{n} cases.",
        f"- peak memory: filled for {sum(s['peak_mb'] is not None for s in summary.values())}/{n} cases "
        f"({sum(s['peak_partial'] for s in summary.values())} of them a lower bound from a call stopped at limit/3).",
        "",
        *section6_lines(results),
        "### Sweeps (W1 relative to std)",
        "",
        "*true/MC*: true W1 over Monte Carlo's expected W1 after the same CPU time (see above).",
        "",
        "| case | run | status | CPU s | bound/std | true W1/std | bound/true | true/MC | method | atoms per input |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cid, res in results.items():
        std = res["reference"]["std"]
        rows = [(f"target {k}", r) for k, r in res["dcg"]["target"].items()]
        rows += [(f"atoms={r['atoms']}", r) for r in res["dcg"]["sweep"]]
        for name, r in rows:
            if r.get("status") != "ok":
                lines.append(f"| {cid} | {name} | {r.get('status')} | {fmt(r['time_s'])} | | | | | | |")
                continue
            meth = r["bound_method"] or r["method"]
            if not r["certified"]:
                meth = (
                    f"QMC fallback, {r.get('qmc_points')} points, est. {fmt((r['w1_estimate'] or math.nan) / std)} std"
                )
            apin = r.get("atoms_per_input") or {}
            ap = (
                "-".join(str(v) for v in apin.values())
                if len(set(apin.values())) > 1
                else str(next(iter(apin.values()), ""))
            )
            ratio = r["bound"] / r["w1"] if r["w1"] > 0 and math.isfinite(r["bound"]) else None
            lines.append(
                f"| {cid} | {name} | ok | {fmt(r['time_s'])} | {fmt(r['bound'] / std)} | {fmt(r['w1'] / std)} "
                f"| {fmt(ratio)} | {fmt(r['w1'] / mc_w1_at(res, r['time_s']))} | {meth} | {ap} |"
            )
    lines += ["", MARK_END, ""]
    section = "\n".join(lines)
    replace_marked_block(path, MARK_BEGIN, MARK_END, section, header="# opgraph.dcg benchmark\n")
    write_json(path.with_name("dcg_uq.json"), results)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short sweeps (smoke run)")
    ap.add_argument("--only", default="", help="comma-separated case ids")
    ap.add_argument("--limit", type=float, default=30.0, help="CPU seconds per opgraph.dcg call (then 'timeout')")
    ap.add_argument("--sweep", type=float, default=15.0, help="CPU seconds for a case's fixed-atoms sweep")
    ap.add_argument("--budget", type=float, default=2.0, help="CPU seconds of the largest MC / QMC run")
    ap.add_argument("--references-only", action="store_true", help="compute and cache the references, then stop")
    ap.add_argument("--report-only", action="store_true", help="rewrite the markdown from docs/benchmarks/dcg_uq.json")
    ap.add_argument("--out-json", default="", help="write this run's results here and no markdown (for shards)")
    ap.add_argument("--retime", default="", help="re-run MC/QMC/OpenTURNS and re-time fast opgraph.dcg rows of a JSON")
    ap.add_argument("--merge", nargs="*", default=[], help="with --report-only: shard JSON files to merge")
    ap.add_argument(
        "--reuse-baselines", default="", help="take the MC / QMC / OpenTURNS results of this earlier results JSON"
    )
    ap.add_argument("--command", default="", help="the command line printed in the report")
    ap.add_argument("--note", default="", help="a line for the report header")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.retime:
        retime(Path(args.retime), args)
        return
    if args.report_only:
        merged: dict[str, Any] = {}
        for f in args.merge or [str(ROOT / "docs" / "benchmarks" / "dcg_uq.json")]:
            merged.update(_read_results(Path(f)))
        order = [c.id for c in make_cases()]
        write_markdown({k: merged[k] for k in order if k in merged}, args)
        return
    cases = make_cases()
    if args.only:
        cases = [c for c in cases if c.id in args.only.split(",")]
    from tqdm import tqdm

    if args.references_only:
        for case in tqdm(cases, desc="references"):
            ref = load_reference(case)
            print(f"{case.id}: mean {ref.mean:.6g} std {ref.std:.6g} err/std {ref.err / ref.std:.2e} ({ref.note})")
        return
    results: dict[str, Any] = {}
    old = ROOT / "docs" / "benchmarks" / "dcg_uq.json"
    if args.only and old.exists() and not args.out_json:
        results = _read_results(old)
    bar = tqdm(cases, desc="UQ cases")
    for case in bar:
        bar.set_postfix_str(case.id)
        results[case.id] = run_case(case, args)
    order = [c.id for c in make_cases()]
    if args.out_json:
        write_json(Path(args.out_json), results)
        return
    write_markdown({k: results[k] for k in order if k in results}, args)


if __name__ == "__main__":
    sys.exit(main())
