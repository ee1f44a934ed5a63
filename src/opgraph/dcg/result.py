"""The output of an evaluation: a discrete law with a certified W1 bound, and ways to look at it."""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from opgraph._base.jsonio import dumps, write_json
from opgraph.dcg.band import MAX_STEPS, CdfBand, GridCells
from opgraph.dcg.errors import DistError

#: Steps per side of the CDF band written by :meth:`DistResult.to_dict` (shrunk conservatively: still certified).
_SAVED_BAND_STEPS = 2048


@dataclass(frozen=True, eq=False)
class DistResult:
    """The law of one graph output on the quantized inputs, and how far it can be from the exact law.

    Attributes:
        atoms: Sorted support points.
        weights: Their probabilities (sum 1).
        w1_bound: Certified upper bound on W1(exact output law, this law); ``inf`` when none exists, ``inf`` also
            for uncertified (QMC) results.
        bound_terms: Contribution of each input's quantization, each compression and each upstream result to
            the bound (they sum to ``w1_bound``).
        certified: False for the randomised-QMC fallback (then ``w1_estimate`` is a statistical estimate).
        support: An interval that contains the support of the exact output law.
        info: How the result was made (method, joint atoms, compressions, atoms per input, seconds).
        w1_estimate: For QMC results, a statistical estimate of the W1 error (not a bound).
        name: A label for printing.
        cells: The joint grid's cells (exact masses and value enclosures, :class:`~opgraph.dcg.band.GridCells`)
            from which :meth:`cdf_band` builds the certified band on the exact CDF; ``None`` for QMC results and
            where an input is a previous result.
        dropped_mass: Probability of the input event left out by ``evaluate(..., truncate=...)`` (0 without
            truncation). Then ``w1_bound`` bounds W1 to the output law of the *truncated* inputs, and the CDF band
            (:meth:`cdf_bounds`, :meth:`quantile_bounds`) is widened by it so that it holds for the exact law
            (see :mod:`opgraph.dcg.truncation`).
    """

    atoms: np.ndarray
    weights: np.ndarray
    w1_bound: float
    bound_terms: dict[str, float]
    certified: bool = True
    support: tuple[float, float] = (-math.inf, math.inf)
    info: dict[str, Any] = field(default_factory=dict)
    w1_estimate: float | None = None
    name: str = "output"
    cells: GridCells | None = None
    dropped_mass: float = 0.0

    # -- moments and law -----------------------------------------------------------------------------------
    def mean(self) -> float:
        """E[Y]."""
        return float(self.atoms @ self.weights)

    def var(self) -> float:
        """Var[Y]."""
        m = self.mean()
        return float(np.square(self.atoms - m) @ self.weights)

    def std(self) -> float:
        """Standard deviation."""
        return math.sqrt(max(self.var(), 0.0))

    def moment(self, k: int) -> float:
        """E[Y**k]."""
        return float(self.atoms**k @ self.weights)

    def cdf(self, t: Any) -> Any:
        """P(Y <= t) (a step function), vectorised."""
        c = np.concatenate([[0.0], np.cumsum(self.weights)])
        c[-1] = 1.0
        out = c[np.searchsorted(self.atoms, np.asarray(t, dtype=float), side="right")]
        return float(out) if np.ndim(out) == 0 else out

    def ppf(self, q: Any) -> Any:
        """Smallest atom with CDF >= q, vectorised."""
        qa = np.asarray(q, dtype=float)
        if np.any((qa < 0) | (qa > 1)):
            raise DistError(f"ppf(q={q!r}): q must lie in [0, 1]")
        c = np.cumsum(self.weights)
        c[-1] = 1.0
        out = self.atoms[np.minimum(np.searchsorted(c, qa * (1 - 1e-15), side="left"), self.atoms.size - 1)]
        return float(out) if np.ndim(out) == 0 else out

    # -- certified probabilities ----------------------------------------------------------------------------
    def cdf_band(self, max_steps: int = MAX_STEPS) -> CdfBand:
        """The certified band ``F_low <= P(Y <= t) <= F_up`` on the exact output CDF (a p-box).

        Built from the joint grid's cells on the first call (a sort of the cells; cached for the default
        ``max_steps``), with at most ``max_steps`` steps per side (fewer steps: a wider, still certified band).

        Raises:
            DistError: For QMC results and results with a previous result as input (no certified band).
        """
        return self._band("cdf_band", max_steps)

    def with_band_source(self, source: Callable[[], GridCells | CdfBand | None]) -> DistResult:
        """This result, whose CDF band comes from ``source()`` (the cells of a grid run of the same program and inputs).

        ``source()`` may also return a certified :class:`CdfBand` of the same exact law (the disjoint split's band:
        the grid run's intersected with the one built from its parts, :mod:`opgraph.dcg.partband`).

        For results made without a joint grid of their own (the disjoint split of :mod:`opgraph.dcg.disjoint`): the
        grid run is made on the first call of :meth:`cdf_band`, :meth:`cdf_bounds`, :meth:`quantile_bounds`,
        :meth:`plot` or :meth:`save`, not before. Its cells enclose the same exact law, so the band is certified
        for this result's exact output law too (it is the grid's band, not one built from this result's atoms).
        """
        object.__setattr__(self, "_band_source", source)
        return self

    def _band(self, what: str, max_steps: int = MAX_STEPS) -> CdfBand:
        saved = self.__dict__.get("_saved_band")
        if self.cells is None and saved is not None:  # a loaded result: the band it was saved with
            return saved if max_steps == MAX_STEPS else saved.shrink(max_steps)
        source = self.__dict__.pop("_band_source", None)
        if self.cells is None and source is not None:
            got = source()
            if isinstance(got, CdfBand):  # a band made without cells (opgraph.dcg.partband), widened as the grid's
                got = self._widened(got)
                object.__setattr__(self, "_saved_band", got)
                return got if max_steps == MAX_STEPS else got.shrink(max_steps)
            object.__setattr__(self, "cells", got)
        if self.cells is None:
            if not self.certified:
                why = (
                    "this result comes from the uncertified quasi-Monte Carlo fallback, which gives no band; raise "
                    "max_joint or lower atoms so that the joint grid (or a compression plan) fits"
                )
            else:
                why = (
                    "an input of this result is a previous result whose atoms are not its exact law; evaluate the "
                    "composed function in one call to get a band"
                )
            raise DistError(f"{what}: no certified CDF band: {why}")
        if max_steps != MAX_STEPS:
            return self._widened(self.cells.band(max_steps))
        band = self.__dict__.get("_band_cache")
        if band is None:
            band = self._widened(self.cells.band(max_steps))
            object.__setattr__(self, "_band_cache", band)
        return band

    def _has_band(self) -> bool:
        """Whether :meth:`cdf_band` has a band to give (the grid's cells, or the band a loaded result was saved with)."""
        return self.cells is not None or "_saved_band" in self.__dict__ or "_band_source" in self.__dict__

    def _widened(self, band: CdfBand) -> CdfBand:
        """The grid's band, widened by the dropped mass of a truncation (valid for the exact law)."""
        if self.dropped_mass > 0:
            from opgraph.dcg.truncation import widen_band

            return widen_band(band, self.dropped_mass)
        return band

    def cdf_bounds(self, t: Any) -> tuple[Any, Any]:
        """Certified ``(lo, hi)`` with ``lo <= P(Y <= t) <= hi`` for the exact output law, vectorised over ``t``.

        The band comes from the joint grid's cells (exact masses, value enclosures per cell); see
        :class:`~opgraph.dcg.band.CdfBand`. Raises :class:`DistError` for QMC results.
        """
        return self._band("cdf_bounds").cdf_bounds(t)

    def quantile_bounds(self, q: Any) -> tuple[Any, Any]:
        """Certified ``(lo, hi)`` that contains the exact output law's ``q``-quantile(s), vectorised over ``q``."""
        return self._band("quantile_bounds").quantile_bounds(q)

    def sample(self, n: int, rng: Any = None) -> np.ndarray:
        """``n`` independent draws (``rng``: a seed or a ``numpy.random.Generator``)."""
        gen = np.random.default_rng(rng)
        return gen.choice(self.atoms, size=int(n), p=self.weights)

    def w1(self, other: Any) -> float:
        """Exact 1-D W1 distance to ``other``.

        ``other`` may be another result, a distribution of this package, a frozen SciPy law or an array of
        samples (numerical integration for SciPy families without closed-form partial moments).
        """
        from opgraph.dcg.distributions import Continuous, Discrete, ScipyContinuous, from_scipy
        from opgraph.dcg.w1 import w1_discrete, w1_to_cdf, w1_to_continuous

        if isinstance(other, DistResult):
            return w1_discrete(self.atoms, self.weights, other.atoms, other.weights)
        if isinstance(other, Discrete):
            return w1_discrete(self.atoms, self.weights, other.values, other.probs)
        if hasattr(other, "dist") and hasattr(other, "cdf"):
            other = from_scipy(other)
        if isinstance(other, ScipyContinuous):
            lo, hi = (float(v) for v in other.frozen.ppf([1e-12, 1 - 1e-12]))
            return w1_to_cdf(self.atoms, self.weights, other.frozen.cdf, lo, hi)
        if isinstance(other, Continuous):
            return w1_to_continuous(self.atoms, self.weights, other)
        arr = np.asarray(other, dtype=float).reshape(-1)
        if arr.size == 0 or not np.all(np.isfinite(arr)):
            raise DistError("w1(other): other must be a result, a distribution, or finite samples")
        return w1_discrete(self.atoms, self.weights, arr, np.ones(arr.size))

    def to_discrete(self) -> Any:
        """The law as an :class:`~opgraph.dcg.distributions.Discrete` (drops the bound)."""
        from opgraph.dcg.distributions import Discrete

        return Discrete(self.atoms, self.weights)

    def to_scipy(self) -> Any:
        """The law as a frozen ``scipy.stats.rv_discrete`` (drops the bound)."""
        import scipy.stats as st

        return st.rv_discrete(name=self.name.replace(" ", "_"), values=(self.atoms, self.weights))

    def _as_input(self) -> Any:
        from opgraph.dcg.distributions import ResultInput

        if not self.certified:
            raise DistError(
                "this result is not certified (QMC fallback) and cannot be composed with a bound; use "
                "result.to_discrete() to reuse its atoms without one"
            )
        law = ResultInput(self.atoms, self.weights, self.w1_bound, self.support)
        law.dropped_mass = self.dropped_mass  # carried into results computed from this one
        return law

    def estimate_label(self) -> str:
        """How an uncertified (QMC) result's ``w1_estimate`` was made, e.g. ``"QMC, 65536 points, 8 scrambles"``."""
        parts = ["QMC"]
        if "points" in self.info:
            parts.append(f"{self.info['points']} points")
        if "replicates" in self.info:
            parts.append(f"spread of {self.info['replicates']} scrambles")
        if self.info.get("target_w1") is not None:
            parts.append(f"sized to target_w1={self.info['target_w1']:.3g}")
        return ", ".join(parts)

    # -- looks -----------------------------------------------------------------------------------------------
    def _bound_text(self) -> str:
        if not self.certified:
            est = f"{self.w1_estimate:.2g}" if self.w1_estimate is not None else "?"
            text = f"not certified ({self.estimate_label()}), W1 estimate {est} (statistical, not a bound)"
        else:
            text = f"W1 <= {self.w1_bound:.3g}"
        if self.dropped_mass > 0:
            text += f" (inputs truncated, dropped mass {self.dropped_mass:.2g})"
        return text

    def __repr__(self) -> str:
        q = self.ppf([0.05, 0.5, 0.95])
        return (
            f"DistResult({self.name}: mean={self.mean():.6g}, std={self.std():.4g}, "
            f"q05={q[0]:.4g}, median={q[1]:.4g}, q95={q[2]:.4g}, {self.atoms.size} atoms, {self._bound_text()})"
        )

    def _repr_html_(self) -> str:
        q = self.ppf([0.05, 0.5, 0.95])
        rows = [
            ("mean", f"{self.mean():.6g}"),
            ("std", f"{self.std():.4g}"),
            ("5% / 50% / 95%", f"{q[0]:.4g} / {q[1]:.4g} / {q[2]:.4g}"),
            ("atoms", str(self.atoms.size)),
            ("W1 bound", html.escape(self._bound_text())),
        ]
        if self.dropped_mass > 0:
            rows.append(("dropped mass (truncation)", f"{self.dropped_mass:.3g}"))
        if self.cells is not None:
            lo, hi = self.cdf_band().quantile_bounds([0.05, 0.5, 0.95])
            text = " / ".join(f"[{a:.4g}, {b:.4g}]" for a, b in zip(lo, hi, strict=True))
            rows.append(("certified 5% / 50% / 95%", text))
        top = sorted(self.bound_terms.items(), key=lambda kv: -kv[1])[:5]
        rows += [(html.escape(k), f"{v:.3g}") for k, v in top]
        body = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
        return f"<table><caption>{html.escape(self.name)}</caption>{body}</table>"

    def plot(self, ax: Any = None, *, bins: int = 80, reference: Any = None) -> Any:
        """Histogram (density) and CDF side by side; returns the matplotlib Figure (Agg backend).

        The CDF panel shades the certified band on the exact CDF (:meth:`cdf_bounds`) where the result has one.

        Args:
            ax: Optional pair of matplotlib axes to draw into.
            bins: Histogram bins.
            reference: Optional frozen SciPy law / distribution with a ``cdf`` to overlay.
        """
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        if ax is None:
            fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        else:
            axes = ax
            fig = axes[0].figure
        lo, hi = float(self.ppf(0.0005)), float(self.ppf(0.9995))
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        axes[0].hist(self.atoms, bins=bins, range=(lo, hi), weights=self.weights, density=True, color="C0", alpha=0.8)
        axes[0].set_title("density (histogram of atoms)")
        t = np.linspace(lo, hi, 600)
        axes[1].plot(t, self.cdf(t), color="C0", label="result")
        has_band = self._has_band()
        if has_band:
            self.cdf_band().plot(axes[1])
        if reference is not None and hasattr(reference, "cdf"):
            axes[1].plot(t, reference.cdf(t), "k--", lw=1, label="reference")
        if reference is not None or has_band:
            axes[1].legend(fontsize="small")
        axes[1].set_title(f"CDF ({self._bound_text()})")
        fig.tight_layout()
        return fig

    # -- saving ----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (atoms and weights included)."""
        return {
            "name": self.name,
            "mean": self.mean(),
            "std": self.std(),
            "w1_bound": self.w1_bound,
            "certified": self.certified,
            "w1_estimate": self.w1_estimate,
            "w1_estimate_label": None if self.certified else self.estimate_label(),
            "bound_terms": self.bound_terms,
            "support": list(self.support),
            "info": self.info,
            "dropped_mass": self.dropped_mass,
            "atoms": self.atoms.tolist(),
            "weights": self.weights.tolist(),
            "cdf_band": None if not self._has_band() else self.cdf_band().shrink(_SAVED_BAND_STEPS).to_dict(),
        }

    def save(self, path: str | Path) -> Path:
        """Write ``.json`` (summary + atoms) or ``.npz`` (atoms, weights, bound), atomically."""
        from opgraph._base.fileio import atomic_open

        p = Path(path)
        if p.suffix == ".npz":
            meta = {k: v for k, v in self.to_dict().items() if k not in ("atoms", "weights")}
            with atomic_open(p, "wb") as f:
                np.savez(
                    f,
                    atoms=self.atoms,
                    weights=self.weights,
                    w1_bound=self.w1_bound,
                    dropped_mass=self.dropped_mass,
                    meta=np.array(dumps(meta, indent=None)),  # a plain string: loads with allow_pickle=False
                )
        else:
            write_json(p, self.to_dict(), indent=None)
        return p

    @classmethod
    def load(cls, path: str | Path) -> DistResult:
        """Read a result written by :meth:`save` (``.npz`` or ``.json``; the format is told by the content).

        The loaded result has its atoms, weights, bound, bound terms, certified flag, W1 estimate, support, info,
        name and dropped mass. The joint grid's cells are not saved: its CDF band is the saved one (shrunk to at
        most 2048 steps per side, still certified), and ``.npz`` files written before the metadata was saved load
        with their atoms, weights, bound and dropped mass only (``certified`` then means a finite bound).
        Non-finite numbers (written as ``"NaN"``/``"Infinity"``) come back as floats, in ``info`` too.

        Raises:
            DistError: the file is missing or is not a saved result (one line naming the path and what is missing).
        """
        p = Path(path)
        try:
            with open(p, "rb") as f:
                head = f.read(4)
        except OSError as exc:
            raise DistError(f"DistResult.load({str(p)!r}): cannot be read ({exc.strerror or exc})") from exc
        if head.startswith(b"PK"):
            d = _read_npz(p)
        else:
            from opgraph._base.jsonio import read_json

            d = read_json(p, what="DistResult.load: saved result", error=DistError)
            if not isinstance(d, dict):
                raise DistError(f"DistResult.load({str(p)!r}): not a saved result (a JSON object is expected)")
        return _from_saved(p, d)


_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _unstring(v: Any) -> Any:
    """``v`` with the strict-JSON strings ``"NaN"``/``"Infinity"``/``"-Infinity"`` turned back into floats."""
    if isinstance(v, dict):
        return {k: _unstring(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_unstring(x) for x in v]
    return _NONFINITE.get(v, v) if isinstance(v, str) else v


def _read_npz(p: Path) -> dict[str, Any]:
    """The fields of an ``.npz`` written by :meth:`DistResult.save` (never unpickles)."""
    import json
    import zipfile

    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DistError(f"DistResult.load({str(p)!r}): not a saved result (unreadable .npz: {exc})") from exc
    missing = [k for k in ("atoms", "weights", "w1_bound") if k not in arrays]
    if missing:
        raise DistError(f"DistResult.load({str(p)!r}): not a saved result (missing {', '.join(missing)})")
    d: dict[str, Any] = {}
    if "meta" in arrays:
        try:
            d = json.loads(str(arrays["meta"]))
        except json.JSONDecodeError as exc:
            raise DistError(f"DistResult.load({str(p)!r}): not a saved result (bad metadata: {exc})") from exc
    d["atoms"], d["weights"] = arrays["atoms"], arrays["weights"]
    d["w1_bound"] = float(arrays["w1_bound"])
    d.setdefault("dropped_mass", float(arrays["dropped_mass"]) if "dropped_mass" in arrays else 0.0)
    d.setdefault("certified", math.isfinite(d["w1_bound"]))
    return d


def _from_saved(p: Path, d: dict[str, Any]) -> DistResult:
    """A :class:`DistResult` from the fields of a saved file (see :meth:`DistResult.load`)."""
    missing = [k for k in ("atoms", "weights", "w1_bound", "certified") if k not in d]
    if missing:
        raise DistError(f"DistResult.load({str(p)!r}): not a saved result (missing {', '.join(missing)})")
    try:
        atoms = np.asarray(d["atoms"], dtype=float).reshape(-1)
        weights = np.asarray(d["weights"], dtype=float).reshape(-1)
        bound = float(d["w1_bound"])
        est = None if d.get("w1_estimate") is None else float(d["w1_estimate"])
        terms = {str(k): float(v) for k, v in (d.get("bound_terms") or {}).items()}
        lo, hi = (float(v) for v in d.get("support", [-math.inf, math.inf]))
        dropped = float(d.get("dropped_mass", 0.0))
        band = None if d.get("cdf_band") is None else CdfBand.from_dict(d["cdf_band"])
    except (TypeError, ValueError, KeyError) as exc:
        raise DistError(f"DistResult.load({str(p)!r}): not a saved result (a malformed field: {exc})") from exc
    if atoms.size == 0 or atoms.size != weights.size:
        raise DistError(
            f"DistResult.load({str(p)!r}): not a saved result ({atoms.size} atoms but {weights.size} weights)"
        )
    info = _unstring(d.get("info") or {})
    r = DistResult(
        atoms,
        weights,
        bound,
        terms,
        bool(d["certified"]),
        (lo, hi),
        info if isinstance(info, dict) else {},
        est,
        str(d.get("name", "output")),
        None,
        dropped,
    )
    if band is not None:
        object.__setattr__(r, "_saved_band", band)
    return r
