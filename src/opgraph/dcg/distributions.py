"""Input distributions and their quantizers, with the exact Wasserstein-1 error of every quantization.

Every continuous family is written as ``X = loc + scale * Z`` with a standard variable ``Z`` whose CDF,
survival function, quantiles and *partial first moments* ``E[Z; Z <= t]`` / ``E[Z; Z > t]`` have closed forms
(Normal, Uniform, Exponential, Gamma, LogNormal, Beta). A quantizer cuts the support into cells (intervals),
puts one atom in each cell and gives it the cell's probability. The monotone coupling then maps each cell onto
its atom, so the quantization error is exactly

    W1(mu, nu) = sum_cells E[|X - a_cell|; X in cell]

and each term has a closed form in the partial moments (no numerical integration). A relative floating-point
slack is added to every cell term so that the number stays an upper bound under rounding.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.special as sc
import scipy.stats as st

from opgraph.dcg.errors import DistError
from opgraph.dcg.regroup import merge_duplicates, regroup
from opgraph.dcg.rv import RandomVariable

_EPS = np.finfo(float).eps
# Quantization tables of standard variables (Normal(0, 1), Uniform(0, 1), Gamma(k, 1)), shared by every law of
# the family in this process: a new Normal(mu, sigma) only maps the table affinely. Oldest entries go first.
_Z_TABLES: dict[tuple[Any, ...], Any] = {}
_Z_TABLES_MAX_BYTES = 256 * 2**20


def _z_store(key: tuple[Any, ...], value: Any) -> None:
    """Keep ``value`` (an array, a tuple of arrays, or None) read-only in :data:`_Z_TABLES`, oldest out first."""
    arrays = [a for a in (value if isinstance(value, tuple) else (value,)) if isinstance(a, np.ndarray)]
    for a in arrays:
        a.setflags(write=False)
    _Z_TABLES[key] = value
    total = sum(_nbytes(v) for v in _Z_TABLES.values())
    while total > _Z_TABLES_MAX_BYTES and len(_Z_TABLES) > 1:
        total -= _nbytes(_Z_TABLES.pop(next(iter(_Z_TABLES))))


def _nbytes(value: Any) -> int:
    return sum(a.nbytes for a in (value if isinstance(value, tuple) else (value,)) if isinstance(a, np.ndarray))


QUANTIZERS = ("auto", "quantile", "meansplit", "geometric")
#: Tail-cut constant of the ``geometric`` quantizer: the two tail cells start ``c = sqrt(2 log(K (n - 2)))``
#: normal scores from the median (``n`` atoms): c = 1.67 / 2.15 / 2.58 / 3.1 at 4 / 7 / 16 / 64 atoms. Measured on
#: the 7-LogNormal damped oscillator (``benchmarks/dcg/uq.py``): its bound is smallest near c = 2 at 6-7 atoms
#: (6 atoms: 5.5 / 4.7 / 4.4 / 5.2 std at c = 1 / 1.5 / 2 / 2.5; 7 atoms: 3.7 / 3.5 at c = 1.8 / 2.2).
GEOMETRIC_K = 2.0


@dataclass(frozen=True)
class Quantized:
    """A discrete approximation of one input law.

    Attributes:
        atoms: Atom locations, sorted.
        weights: Atom masses (sum 1).
        lo: Left end of each atom's cell (may be ``-inf``).
        hi: Right end of each atom's cell (may be ``inf``).
        err: Upper bound on ``E[|X - atom|; X in cell]`` per cell (exact value plus rounding slack).
        method: ``"quantile"``, ``"meansplit"``, ``"exact"`` (a discrete law kept as is) or ``"regroup"``.
        upstream_w1: For a previous result used as input: its certified W1 bound (0 otherwise).
        support: An interval that contains the support of the true law (and every atom).
        bias: Upper bound on ``|E[X - atom; X in cell]|`` per cell (0 up to rounding for conditional-mean
            atoms); ``None`` means unknown (then ``err`` is used, which is always a bound).
        m2: Upper bound on ``E[(X - atom)^2; X in cell]`` per cell; ``None`` means unknown (infinite).
    """

    atoms: np.ndarray
    weights: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    err: np.ndarray
    method: str
    upstream_w1: float = 0.0
    support: tuple[float, float] = (-math.inf, math.inf)
    bias: np.ndarray | None = None
    m2: np.ndarray | None = None
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def cell_abs_moment(self, law: Any, j: int) -> np.ndarray | None:
        """``law.abs_moment`` over this quantization's cells (``E[|X|^j; cell]`` bounds), memoised per ``j``.

        ``law`` must be the law this quantization was made from (the memo is keyed by ``id(law)`` and ``j``).
        """
        key = ("abs_moment", id(law), j)
        if key not in self.memo:
            zref = self.memo.get("z")
            if zref is not None and zref[0] is type(law) and hasattr(law, "abs_moment_z"):
                self.memo[key] = law.abs_moment_z(zref, j)  # from the shared standard-variable table
            else:
                fn = getattr(law, "abs_moment", None)
                self.memo[key] = None if fn is None else fn(self.lo, self.hi, j)
        return self.memo[key]

    @property
    def w1(self) -> float:
        """The quantization error: an upper bound on W1(input law, atoms) (exact up to rounding slack)."""
        return float(self.err.sum())

    @property
    def bounded(self) -> bool:
        """True when every cell is a finite interval."""
        return bool(np.all(np.isfinite(self.lo)) and np.all(np.isfinite(self.hi)))


def _check_param(name: str, value: Any, *, positive: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise DistError(f"parameter {name}={value!r} must be a real number") from None
    if not math.isfinite(v):
        raise DistError(f"parameter {name}={value!r} must be finite; pass a finite number")
    if positive and v <= 0:
        raise DistError(f"parameter {name}={value!r} must be > 0")
    return v


def check_atoms(atoms: Any, name: str = "atoms") -> int:
    """Validate an atom count (an integer >= 1) and return it."""
    if isinstance(atoms, bool) or not isinstance(atoms, int | np.integer):
        raise DistError(f"{name}={atoms!r} must be an integer >= 1 (for example {name}=256)")
    if atoms < 1:
        raise DistError(f"{name}={atoms} must be >= 1 (for example {name}=256)")
    return int(atoms)


class Distribution(RandomVariable):
    """A 1-D input law. Subclasses are continuous families or discrete laws; all support lazy arithmetic."""

    name: str = "dist"

    def __init__(self) -> None:
        super().__init__()

    # -- law -------------------------------------------------------------------------------------------------
    def cdf(self, t: Any) -> np.ndarray:
        """P(X <= t)."""
        raise DistError(f"{type(self).__name__} has no CDF")

    def mean(self) -> float:
        """E[X]."""
        raise DistError(f"{type(self).__name__} has no mean")

    def support(self) -> tuple[float, float]:
        """An interval containing the support."""
        return (-math.inf, math.inf)

    def quantize(self, atoms: int, method: str = "auto") -> Quantized:
        """Discretize to about ``atoms`` atoms; see :class:`Quantized`."""
        raise DistError(f"{type(self).__name__} cannot be quantized")

    def density_tv(self) -> float:
        """Total variation of the density (``inf`` when unknown or when there is no BV density).

        Used by the second-order bound for sums (see :mod:`opgraph.dcg.engine`).
        """
        return math.inf

    def scaled_tv(self) -> float:
        """Total variation of ``s^2 p(s)`` (``p`` the density; ``inf`` when unknown).

        Used by the second-order bound for products (see :mod:`opgraph.dcg.engine`).
        """
        return math.inf

    def mean_abs(self) -> float:
        """An upper bound on ``E|X|`` (``inf`` when unknown)."""
        return math.inf

    def inv_mean_abs(self) -> float:
        """An upper bound on ``E|1/X|`` (``inf`` when unknown or infinite)."""
        return math.inf


def _m2_setting() -> bool:
    """The exact-cell-second-moment switch (:mod:`opgraph.dcg.cellm2`): the quantizer tables are kept per setting."""
    from opgraph.dcg import cellm2

    return cellm2.ENABLED.get()


class Continuous(Distribution):
    """``X = loc + scale * Z`` with a standard variable ``Z`` described by the ``_z*`` methods."""

    def __init__(self, loc: float, scale: float) -> None:
        super().__init__()
        self.loc = float(loc)
        self.scale = float(scale)

    # standard-variable interface (vectorised) ---------------------------------------------------------------
    @abstractmethod
    def _zcdf(self, z: np.ndarray) -> np.ndarray:
        """P(Z <= z)."""

    def _zsf(self, z: np.ndarray) -> np.ndarray:
        return 1.0 - self._zcdf(z)

    @abstractmethod
    def _zppf(self, q: np.ndarray) -> np.ndarray:
        """Quantile function of Z."""

    def _zisf(self, q: np.ndarray) -> np.ndarray:
        return self._zppf(1.0 - q)

    @abstractmethod
    def _zpm_lo(self, z: np.ndarray) -> np.ndarray:
        """E[Z; Z <= z]."""

    @abstractmethod
    def _zpm_hi(self, z: np.ndarray) -> np.ndarray:
        """E[Z; Z > z]."""

    def _zmedian(self) -> float:
        return float(self._zppf(np.array(0.5)))

    def _zsupport(self) -> tuple[float, float]:
        return (-math.inf, math.inf)

    # public law interface -----------------------------------------------------------------------------------
    def cdf(self, t: Any) -> np.ndarray:
        """P(X <= t), vectorised."""
        return self._zcdf((np.asarray(t, dtype=float) - self.loc) / self.scale)

    def ppf(self, q: Any) -> np.ndarray:
        """Quantile function, vectorised."""
        return self.loc + self.scale * self._zppf(np.asarray(q, dtype=float))

    def partial_moment(self, t: Any) -> np.ndarray:
        """E[X; X <= t], vectorised (closed form)."""
        z = (np.asarray(t, dtype=float) - self.loc) / self.scale
        return self.loc * self._zcdf(z) + self.scale * self._zpm_lo(z)

    def mean(self) -> float:
        """E[X]."""
        return self.loc + self.scale * float(self._zpm_lo(np.array(np.inf)))

    def mean_abs(self) -> float:
        """``E|X| = E[X] - 2 E[X; X <= 0]`` from the closed-form partial moments (plus slack)."""
        if type(self).__name__ == "ScipyContinuous":
            return math.inf
        m = self.mean() - 2.0 * float(self.partial_moment(0.0))
        return abs(m) * (1 + 1e-9) + 1e-300

    def support(self) -> tuple[float, float]:
        """The support as an interval."""
        a, b = self._zsupport()
        return (self.loc + self.scale * a, self.loc + self.scale * b)

    @abstractmethod
    def to_scipy(self) -> Any:
        """A frozen SciPy distribution with the same law."""

    # cells ---------------------------------------------------------------------------------------------------
    def _cell_mass_moment(self, l: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P(l < Z <= r) and E[Z; l < Z <= r], using the tail formulas that avoid cancellation."""
        med = self._zmedian()
        upper = l >= med
        with np.errstate(invalid="ignore"):
            mass_lo = self._zcdf(r) - self._zcdf(l)
            mom_lo = self._zpm_lo(r) - self._zpm_lo(l)
            mass_hi = self._zsf(l) - self._zsf(r)
            mom_hi = self._zpm_hi(l) - self._zpm_hi(r)
        mass = np.where(upper, mass_hi, mass_lo)
        mom = np.where(upper, mom_hi, mom_lo)
        return np.maximum(mass, 0.0), mom

    def _cell_abs_dev(self, l: np.ndarray, a: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Upper bound on E[|Z - a|; l < Z <= r] (exact closed form plus rounding slack), Z units."""
        m1, s1 = self._cell_mass_moment(l, a)
        m2, s2 = self._cell_mass_moment(a, r)
        left = np.maximum(a * m1 - s1, 0.0)
        right = np.maximum(s2 - a * m2, 0.0)
        slack = 64 * _EPS * (np.abs(a) * (m1 + m2) + np.abs(s1) + np.abs(s2) + 1e-3 * (m1 + m2)) + 1e-300
        return left + right + slack

    def _zabs_moment(self, zl: np.ndarray, zr: np.ndarray, j: int) -> np.ndarray | None:
        """Upper bound on E[|Z|^j; zl < Z <= zr] (``None`` when this family has no closed form)."""
        return None

    def abs_moment(self, l: np.ndarray, r: np.ndarray, j: int) -> np.ndarray | None:
        """Upper bound on ``E[|X|^j; l < X <= r]`` per cell (via ``|X| <= |loc| + scale |Z|``), or ``None``."""
        zl, zr = (np.asarray(l, float) - self.loc) / self.scale, (np.asarray(r, float) - self.loc) / self.scale
        total = np.zeros(np.broadcast(zl, zr).shape)
        for i in range(j + 1):
            m = self._zabs_moment(zl, zr, i)
            if m is None:
                return None
            total = total + math.comb(j, i) * abs(self.loc) ** (j - i) * self.scale**i * m
        return total * (1 + 1e-12) + 1e-300

    def _z_quantile_cells(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        i = np.arange(n + 1)
        q = i / n
        edges = np.where(q <= 0.5, self._zppf(np.minimum(q, 0.5)), self._zisf(np.minimum(1 - q, 0.5)))
        za, zb = self._zsupport()
        edges[0], edges[-1] = za, zb
        qa = (np.arange(n) + 0.5) / n
        atoms = np.where(qa <= 0.5, self._zppf(np.minimum(qa, 0.5)), self._zisf(np.minimum(1 - qa, 0.5)))
        atoms = np.clip(atoms, edges[:-1], edges[1:])
        return edges[:-1], atoms, edges[1:]

    def _z_geometric_cells(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``n`` cells equal in normal scores ``u = Phi^-1(F(x))`` over ``[-c, c]`` plus two tail cells beyond.

        For a LogNormal the inner cells are equal in ``log x`` (geometric edges). The tail cut ``c`` grows slowly with
        ``n`` (:data:`GEOMETRIC_K`), so the tail cells carry little mass (``Phi(-c)``: 0.048 at 4 atoms, 0.016 at
        7, 1e-3 at 64) where mean-split cells give each tail about 1 / n. A program of several inputs charges a box
        that touches a tail cell with a product-form envelope (:mod:`opgraph.dcg.multienv`, of the order of the
        output's magnitude per unit mass): these cells trade that for inner cells a little wider. Atoms are the
        cells' conditional means (mean-preserving). At 1, 2 and 4 atoms: the mean-split cells.
        """
        if n in (1, 2, 4):  # too few inner cells to pay for the light tails (DampedOsc at 4 atoms: 6.0-7.3 std
            return self._z_meansplit_cells(n.bit_length() - 1)  # for c = 0.7-1.7, mean-split 6.1)
        c = math.sqrt(2.0 * math.log(GEOMETRIC_K * (n - 2)))
        u = np.linspace(-c, c, n - 1)
        za, zb = self._zsupport()
        pu = sc.ndtr(-np.abs(u))  # tail probability of each score, no 1 - p cancellation
        inner = np.where(u <= 0, self._zppf(pu), self._zisf(pu))
        edges = np.concatenate([[za], inner, [zb]])
        edges = np.maximum.accumulate(edges)
        l, r = edges[:-1], edges[1:]
        mass, mom = self._cell_mass_moment(l, r)
        with np.errstate(invalid="ignore", divide="ignore"):
            atoms = mom / mass
        finite_mid = 0.5 * (np.where(np.isfinite(l), l, r) + np.where(np.isfinite(r), r, l))
        atoms = np.clip(np.where(np.isfinite(atoms), atoms, finite_mid), l, r)
        return l, atoms, r, mass

    def _z_meansplit_cells(self, depth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        za, zb = self._zsupport()
        edges = np.array([za, zb])
        for _ in range(depth):
            l, r = edges[:-1], edges[1:]
            mass, mom = self._cell_mass_moment(l, r)
            with np.errstate(invalid="ignore", divide="ignore"):
                m = mom / mass
            with np.errstate(invalid="ignore"):
                fm = 0.5 * (np.where(np.isfinite(l), l, r) + np.where(np.isfinite(r), r, l))
            m = np.where(np.isfinite(m), m, fm)
            m = np.clip(m, np.where(np.isfinite(l), l, -np.inf), np.where(np.isfinite(r), r, np.inf))
            new = np.empty(2 * edges.size - 1)
            new[0::2] = edges
            new[1::2] = m
            edges = new
        l, r = edges[:-1], edges[1:]
        mass, mom = self._cell_mass_moment(l, r)
        with np.errstate(invalid="ignore", divide="ignore"):
            atoms = mom / mass
        finite_mid = 0.5 * (np.where(np.isfinite(l), l, r) + np.where(np.isfinite(r), r, l))
        atoms = np.where(np.isfinite(atoms), atoms, finite_mid)
        atoms = np.clip(atoms, l, r)
        return l, atoms, r, mass

    def quantize(self, atoms: int, method: str = "auto") -> Quantized:
        """Discretize the law; the exact W1 error of every cell is returned with the atoms.

        Quantizers: ``"quantile"`` (midpoint quantiles, equal weights), ``"meansplit"`` (2**k atoms at the
        conditional means of a recursive split at the conditional mean; mean-preserving) or ``"auto"``
        (whichever has the smaller exact W1).

        Args:
            atoms: Number of atoms (``meansplit`` uses the largest power of two <= atoms).
            method: One of :data:`QUANTIZERS`.

        Returns:
            The :class:`Quantized` law with the exact per-cell W1 error.
        """
        n = check_atoms(atoms)
        if method not in QUANTIZERS:
            raise DistError(f"quantizer={method!r} is unknown; use one of {', '.join(QUANTIZERS)}")
        cache = self.__dict__.setdefault("_qcache", {})
        key = (n, method, _m2_setting())  # the cells' second moments depend on the exact_cell_m2 switch
        hit = cache.get(key)
        if hit is None:
            hit = cache[key] = self._quantize(n, method)
        return hit

    def _quantize(self, n: int, method: str) -> Quantized:
        if method == "auto":
            if n < 2:
                return self.quantize(n, "quantile")
            if self._z_key() is not None:
                # The exact W1 of both schemes scales with ``scale``: decide on the standard tables, map one.
                eq = float(np.sum(self._z_table(n, "quantile")[4]))
                em = float(np.sum(self._z_table(n, "meansplit")[4]))
                return self.quantize(n, "meansplit" if em < eq else "quantile")
            a = self.quantize(n, "quantile")
            b = self.quantize(n, "meansplit")
            return b if b.w1 < a.w1 else a
        l, a, r, w, err_z, bias_z, m2_z = self._z_table(n, method)
        s = self.scale
        x = self.loc + s * a
        # The affine map is rounded: an atom may sit up to a few ulps off loc + s * a; charge that shift to
        # every per-cell bound (E|X - x'| <= E|X - x| + |x' - x| P, and likewise for the moments).
        d = 4 * _EPS * (abs(self.loc) + s * np.abs(a))
        err = err_z * s + d * w
        bias = bias_z * s + d * w
        m2 = m2_z * s * s + 2 * d * err_z * s + d * d * w
        q = Quantized(x, w, self.loc + s * l, self.loc + s * r, err, method, 0.0, self.support(), bias, m2)
        zkey = self._z_key()
        if zkey is not None:
            q.memo["z"] = (type(self), zkey, n, method)
        return q

    def abs_moment_z(self, zref: tuple[Any, ...], j: int) -> np.ndarray | None:
        """:meth:`abs_moment` over the cells of the shared table ``zref`` (its ``Z`` moments computed once)."""
        _, _, n, method = zref
        total: Any = 0.0
        for i in range(j + 1):
            key = (*zref, "zabs", i)
            if key not in _Z_TABLES:
                l, _, r, *_rest = self._z_table(n, method)
                _z_store(key, self._zabs_moment(l, r, i))
            m = _Z_TABLES[key]
            if m is None:
                return None
            total = total + math.comb(j, i) * abs(self.loc) ** (j - i) * self.scale**i * m
        return total * (1 + 1e-12) + 1e-300

    def _z_key(self) -> tuple[Any, ...] | None:
        """Hashable parameters of the standard variable ``Z`` (``None``: its tables are not shared)."""
        return None

    def _z_table(self, n: int, method: str) -> tuple[np.ndarray, ...]:
        """Cells, atoms, weights and per-cell error bounds of ``Z`` (shared per process by :meth:`_z_key`)."""
        zkey = self._z_key()
        key = None if zkey is None else (type(self), zkey, n, method, _m2_setting())
        if key is not None and key in _Z_TABLES:
            return _Z_TABLES[key]
        if method == "quantile":
            l, a, r = self._z_quantile_cells(n)
            w = np.full(n, 1.0 / n)
        elif method == "geometric":
            l, a, r, w = self._z_geometric_cells(n)
            w = w / w.sum()
        else:
            depth = int(math.floor(math.log2(n)))
            l, a, r, w = self._z_meansplit_cells(depth)
            w = w / w.sum()
        err_z = self._cell_abs_dev(l, a, r)
        bias_z, m2_z = self._cell_bias_m2(l, a, r, err_z)
        table = (l, a, r, w, err_z, bias_z, m2_z)
        if key is not None:
            _z_store(key, table)
        return table

    def _cell_bias_m2(
        self, l: np.ndarray, a: np.ndarray, r: np.ndarray, err_z: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Upper bounds on ``|E[Z - a; cell]|`` and ``E[(Z - a)^2; cell]`` per cell (Z units).

        Finite cells: ``E[(Z - a)^2] <= max(a - l, r - a) * E|Z - a|`` (rigorous, no cancellation). Infinite
        (tail) cells: the closed form ``E[Z^2] - 2 a E[Z] + a^2 P`` from partial moments, plus slack.
        """
        mass, mom = self._cell_mass_moment(l, r)
        with np.errstate(invalid="ignore"):
            bias = np.abs(mom - a * mass) + 64 * _EPS * (np.abs(mom) + np.abs(a) * mass) + 1e-300
        bias = np.where(np.isfinite(bias), np.minimum(bias, err_z), err_z)
        finite = np.isfinite(l) & np.isfinite(r)
        with np.errstate(invalid="ignore"):
            m2 = np.where(finite, np.maximum(a - l, r - a) * err_z, np.inf)
        if not np.all(finite):
            M2 = self._zabs_moment(l, r, 2)
            if M2 is not None:
                with np.errstate(invalid="ignore"):
                    tail = M2 - 2 * a * mom + a * a * mass
                    tail = np.maximum(tail, 0.0) + 1e-9 * (M2 + 2 * np.abs(a * mom) + a * a * mass) + 1e-300
                m2 = np.where(finite, m2, np.where(np.isfinite(tail), tail, np.inf))
        return bias, m2

    def _params(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._params()})"


class Normal(Continuous):
    """Normal law with mean ``mu`` and standard deviation ``sigma``."""

    name = "normal"

    def _z_key(self) -> tuple[Any, ...] | None:
        return ("normal",)

    def __init__(self, mu: float = 0.0, sigma: float = 1.0) -> None:
        super().__init__(_check_param("mu", mu), _check_param("sigma", sigma, positive=True))

    def _zcdf(self, z: np.ndarray) -> np.ndarray:
        return sc.ndtr(z)

    def _zsf(self, z: np.ndarray) -> np.ndarray:
        return sc.ndtr(-z)

    def _zppf(self, q: np.ndarray) -> np.ndarray:
        return sc.ndtri(q)

    def _zisf(self, q: np.ndarray) -> np.ndarray:
        return -sc.ndtri(q)

    def _zpm_lo(self, z: np.ndarray) -> np.ndarray:
        return -np.exp(-0.5 * np.square(z)) / math.sqrt(2 * math.pi)

    def _zpm_hi(self, z: np.ndarray) -> np.ndarray:
        return np.exp(-0.5 * np.square(z)) / math.sqrt(2 * math.pi)

    def _zmedian(self) -> float:
        return 0.0

    def _cell_bias_m2(
        self, l: np.ndarray, a: np.ndarray, r: np.ndarray, err_z: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """As the base class, and on finite cells also the closed form of ``E[(Z - a)^2; l < Z <= r]``.

        ``int (z - a)^2 phi = (1 + a^2) (Phi(r) - Phi(l)) - (r - 2a) phi(r) + (l - 2a) phi(l)`` (from
        ``int z^2 phi = Phi - z phi`` and ``int z phi = -phi``), with an absolute rounding slack of
        ``1e-13 (1 + a^2 + |l| + |r|)`` (the terms are at most that large, each within a few ulps); the smaller of
        this and the base class's ``max deviation * E|Z - a|`` (about 1.5x the exact value on a narrow cell).
        """
        bias, m2 = super()._cell_bias_m2(l, a, r, err_z)
        finite = np.isfinite(l) & np.isfinite(r)
        if not np.any(finite):
            return bias, m2
        lf, rf = np.where(finite, l, 0.0), np.where(finite, r, 0.0)
        mass = np.where(lf >= 0, sc.ndtr(-lf) - sc.ndtr(-rf), sc.ndtr(rf) - sc.ndtr(lf))
        c = 1 / math.sqrt(2 * math.pi)
        phl, phr = c * np.exp(-0.5 * lf * lf), c * np.exp(-0.5 * rf * rf)
        exact = (1 + a * a) * mass - (rf - 2 * a) * phr + (lf - 2 * a) * phl
        slack = 1e-13 * (1 + a * a + np.abs(lf) + np.abs(rf))
        closed = np.maximum(exact, 0.0) + slack
        m2 = np.where(finite & np.isfinite(closed), np.minimum(m2, closed), m2)
        return bias, m2

    @staticmethod
    def _upper_moment(t: np.ndarray, j: int) -> np.ndarray:
        """int_t^inf z^j phi(z) dz (recursion J_j = t^(j-1) phi(t) + (j-1) J_(j-2))."""
        t = np.asarray(t, float)
        phi = np.exp(-0.5 * np.square(np.where(np.isfinite(t), t, 0.0))) / math.sqrt(2 * math.pi)
        phi = np.where(np.isfinite(t), phi, 0.0)
        tt = np.where(np.isfinite(t), t, 0.0)
        j0, j1 = sc.ndtr(-t), phi
        if j == 0:
            return j0
        if j == 1:
            return j1
        prev2, prev1 = j0, j1
        for m in range(2, j + 1):
            cur = tt ** (m - 1) * phi + (m - 1) * prev2
            prev2, prev1 = prev1, cur
        return prev1

    def _zabs_moment(self, zl: np.ndarray, zr: np.ndarray, j: int) -> np.ndarray | None:
        full = 2 ** (j / 2) * math.gamma((j + 1) / 2) / math.sqrt(math.pi)
        neg = zr <= 0
        pos = zl >= 0
        with np.errstate(invalid="ignore"):
            m_neg = self._upper_moment(-zr, j) - self._upper_moment(-zl, j)
            m_pos = self._upper_moment(zl, j) - self._upper_moment(zr, j)
        out = np.where(neg, m_neg, np.where(pos, m_pos, full))
        return np.maximum(out, 0.0) * (1 + 1e-12) + 1e-300

    def to_scipy(self) -> Any:
        """``scipy.stats.norm(mu, sigma)``."""
        return st.norm(self.loc, self.scale)

    def density_tv(self) -> float:
        """Total variation of the Normal density: ``2 phi(0) / sigma``."""
        return 2.0 / math.sqrt(2 * math.pi) / self.scale * (1 + 1e-12)

    def scaled_tv(self) -> float:
        """TV of ``s^2 p(s)``: it rises from 0 to a peak at each root of ``s^2 - mu s - 2 sigma^2`` and is 0 at 0."""
        mu, sg = self.loc, self.scale
        r = math.sqrt(mu * mu + 8 * sg * sg)
        total = 0.0
        for s0 in ((mu - r) / 2, (mu + r) / 2):
            total += 2 * s0 * s0 * math.exp(-0.5 * ((s0 - mu) / sg) ** 2) / (sg * math.sqrt(2 * math.pi))
        return total * (1 + 1e-9)

    def _params(self) -> str:
        return f"{self.loc:g}, {self.scale:g}"


class Uniform(Continuous):
    """Uniform law on ``[low, high]``."""

    name = "uniform"

    def _z_key(self) -> tuple[Any, ...] | None:
        return ("uniform",)

    def __init__(self, low: float = 0.0, high: float = 1.0) -> None:
        lo, hi = _check_param("low", low), _check_param("high", high)
        if not hi > lo:
            raise DistError(f"Uniform(low={lo}, high={hi}): high must be > low")
        super().__init__(lo, hi - lo)

    def _zcdf(self, z: np.ndarray) -> np.ndarray:
        return np.clip(z, 0.0, 1.0)

    def _zsf(self, z: np.ndarray) -> np.ndarray:
        return np.clip(1.0 - z, 0.0, 1.0)

    def _zppf(self, q: np.ndarray) -> np.ndarray:
        return np.asarray(q, dtype=float)

    def _zisf(self, q: np.ndarray) -> np.ndarray:
        return 1.0 - np.asarray(q, dtype=float)

    def _zpm_lo(self, z: np.ndarray) -> np.ndarray:
        return 0.5 * np.square(np.clip(z, 0.0, 1.0))

    def _zpm_hi(self, z: np.ndarray) -> np.ndarray:
        c = np.clip(z, 0.0, 1.0)
        return 0.5 * (1.0 - c) * (1.0 + c)

    def _zmedian(self) -> float:
        return 0.5

    def _zsupport(self) -> tuple[float, float]:
        return (0.0, 1.0)

    def to_scipy(self) -> Any:
        """``scipy.stats.uniform(low, high - low)``."""
        return st.uniform(self.loc, self.scale)

    def density_tv(self) -> float:
        """Total variation of the uniform density: ``2 / (high - low)`` (its two jumps)."""
        return 2.0 / self.scale * (1 + 1e-12)

    def scaled_tv(self) -> float:
        """TV of ``s^2 / (h - l)`` on ``[l, h]``: the two end jumps plus the variation of ``s^2`` inside."""
        lo, hi = self.loc, self.loc + self.scale
        inside = abs(hi * hi - lo * lo) if lo >= 0 or hi <= 0 else lo * lo + hi * hi
        return (lo * lo + inside + hi * hi) / self.scale * (1 + 1e-12)

    def _cell_bias_m2(
        self, l: np.ndarray, a: np.ndarray, r: np.ndarray, err_z: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """As the base class, and (:mod:`opgraph.dcg.cellm2`) the exact ``w (w^2 / 12 + (m - a)^2)``, the smaller."""
        bias, m2 = super()._cell_bias_m2(l, a, r, err_z)
        from opgraph.dcg import cellm2

        if cellm2.ENABLED.get():
            exact = cellm2.uniform_m2(l, a, r)
            m2 = np.where(np.isfinite(exact), np.minimum(m2, exact), m2)
        return bias, m2

    def inv_mean_abs(self) -> float:
        """``E|1/X| = ln(h / l) / (h - l)`` when the support excludes 0."""
        lo, hi = self.loc, self.loc + self.scale
        if lo * hi <= 0:
            return math.inf
        return abs(math.log(hi / lo)) / self.scale * (1 + 1e-12)

    def _params(self) -> str:
        return f"{self.loc:g}, {self.loc + self.scale:g}"


class Gamma(Continuous):
    """Gamma law with shape ``k`` and scale ``theta`` (mean ``k * theta``)."""

    name = "gamma"

    def _z_key(self) -> tuple[Any, ...] | None:
        return ("gamma", self.k)

    def __init__(self, shape: float = 1.0, scale: float = 1.0) -> None:
        self.k = _check_param("shape", shape, positive=True)
        super().__init__(0.0, _check_param("scale", scale, positive=True))

    def _zcdf(self, z: np.ndarray) -> np.ndarray:
        return sc.gammainc(self.k, np.maximum(z, 0.0))

    def _zsf(self, z: np.ndarray) -> np.ndarray:
        return sc.gammaincc(self.k, np.maximum(z, 0.0))

    def _zppf(self, q: np.ndarray) -> np.ndarray:
        return sc.gammaincinv(self.k, q)

    def _zisf(self, q: np.ndarray) -> np.ndarray:
        return sc.gammainccinv(self.k, q)

    def _zpm_lo(self, z: np.ndarray) -> np.ndarray:
        return self.k * sc.gammainc(self.k + 1, np.maximum(z, 0.0))

    def _zpm_hi(self, z: np.ndarray) -> np.ndarray:
        return self.k * sc.gammaincc(self.k + 1, np.maximum(z, 0.0))

    def _zsupport(self) -> tuple[float, float]:
        return (0.0, math.inf)

    def _zabs_moment(self, zl: np.ndarray, zr: np.ndarray, j: int) -> np.ndarray | None:
        c = math.exp(math.lgamma(self.k + j) - math.lgamma(self.k))
        a, b = np.maximum(zl, 0.0), np.maximum(zr, 0.0)
        with np.errstate(invalid="ignore"):
            m = c * (sc.gammaincc(self.k + j, a) - sc.gammaincc(self.k + j, b))
        return np.maximum(m, 0.0) * (1 + 1e-12) + 1e-300

    def to_scipy(self) -> Any:
        """``scipy.stats.gamma(k, scale=theta)``."""
        return st.gamma(self.k, scale=self.scale)

    def density_tv(self) -> float:
        """Total variation of the density: twice its maximum (unimodal, ``k >= 1``); ``inf`` for ``k < 1``."""
        if self.k < 1:
            return math.inf
        if self.k == 1:
            peak = 1.0
        else:
            m = self.k - 1
            peak = math.exp(m * math.log(m) - m - math.lgamma(self.k))
        return 2.0 * peak / self.scale * (1 + 1e-9)

    def scaled_tv(self) -> float:
        """TV of ``s^2 p(s)`` (unimodal, peak at ``(k + 1) theta``): twice the peak."""
        k1 = self.k + 1
        peak = self.scale * math.exp(k1 * math.log(k1) - k1 - math.lgamma(self.k))
        return 2.0 * peak * (1 + 1e-9)

    def inv_mean_abs(self) -> float:
        """``E[1/X] = 1 / ((k - 1) theta)`` for ``k > 1``."""
        return 1.0 / ((self.k - 1) * self.scale) * (1 + 1e-12) if self.k > 1 else math.inf

    def _params(self) -> str:
        return f"{self.k:g}, {self.scale:g}"


class Exponential(Gamma):
    """Exponential law with rate ``rate`` (mean ``1 / rate``)."""

    name = "exponential"

    def __init__(self, rate: float = 1.0) -> None:
        r = _check_param("rate", rate, positive=True)
        super().__init__(1.0, 1.0 / r)

    def to_scipy(self) -> Any:
        """``scipy.stats.expon(scale=1/rate)``."""
        return st.expon(scale=self.scale)

    def _params(self) -> str:
        return f"{1.0 / self.scale:g}"


class LogNormal(Continuous):
    """Law of ``exp(N)`` with ``N ~ Normal(mu, sigma)``."""

    name = "lognormal"

    def __init__(self, mu: float = 0.0, sigma: float = 1.0) -> None:
        self.mu = _check_param("mu", mu)
        self.sigma = _check_param("sigma", sigma, positive=True)
        # E[X^2] = exp(2 mu + 2 sigma^2) must be a float (709 is log of the largest one), and exp(mu) nonzero.
        if abs(self.mu) > 700 or self.mu + self.sigma**2 > 354:
            raise DistError(
                f"LogNormal(mu={mu}, sigma={sigma}): its moments overflow a float (need |mu| <= 700 and "
                "mu + sigma**2 <= 354); rescale the variable"
            )
        super().__init__(0.0, math.exp(self.mu))

    def _ln(self, z: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(np.maximum(z, 0.0)) / self.sigma

    def _zcdf(self, z: np.ndarray) -> np.ndarray:
        return sc.ndtr(self._ln(z))

    def _zsf(self, z: np.ndarray) -> np.ndarray:
        return sc.ndtr(-self._ln(z))

    def _zppf(self, q: np.ndarray) -> np.ndarray:
        return np.exp(self.sigma * sc.ndtri(q))

    def _zisf(self, q: np.ndarray) -> np.ndarray:
        return np.exp(-self.sigma * sc.ndtri(q))

    def _zpm_lo(self, z: np.ndarray) -> np.ndarray:
        return math.exp(0.5 * self.sigma**2) * sc.ndtr(self._ln(z) - self.sigma)

    def _zpm_hi(self, z: np.ndarray) -> np.ndarray:
        return math.exp(0.5 * self.sigma**2) * sc.ndtr(self.sigma - self._ln(z))

    def _zmedian(self) -> float:
        return 1.0

    def _zsupport(self) -> tuple[float, float]:
        return (0.0, math.inf)

    def _zabs_moment(self, zl: np.ndarray, zr: np.ndarray, j: int) -> np.ndarray | None:
        c = math.exp(0.5 * (j * self.sigma) ** 2)
        with np.errstate(invalid="ignore"):
            m = c * (sc.ndtr(j * self.sigma - self._ln(zl)) - sc.ndtr(j * self.sigma - self._ln(zr)))
        return np.maximum(m, 0.0) * (1 + 1e-12) + 1e-300

    def to_scipy(self) -> Any:
        """``scipy.stats.lognorm(sigma, scale=exp(mu))``."""
        return st.lognorm(self.sigma, scale=self.scale)

    def density_tv(self) -> float:
        """Total variation of the density: twice its maximum (unimodal).

        The maximum is ``exp(sigma^2 / 2) / (sigma sqrt(2 pi))`` at the mode ``exp(-sigma^2)`` (standard units).
        """
        peak = math.exp(0.5 * self.sigma**2) / (self.sigma * math.sqrt(2 * math.pi))
        return 2.0 * peak / self.scale * (1 + 1e-9)

    def scaled_tv(self) -> float:
        """TV of ``s^2 p(s)`` (unimodal, peak ``exp(mu + sigma^2 / 2) / (sigma sqrt(2 pi))``): twice the peak."""
        return 2.0 * math.exp(self.mu + 0.5 * self.sigma**2) / (self.sigma * math.sqrt(2 * math.pi)) * (1 + 1e-9)

    def inv_mean_abs(self) -> float:
        """``E[1/X] = exp(-mu + sigma^2 / 2)``."""
        return math.exp(-self.mu + 0.5 * self.sigma**2) * (1 + 1e-12)

    def _params(self) -> str:
        return f"{self.mu:g}, {self.sigma:g}"


class Beta(Continuous):
    """Beta law with shapes ``a`` and ``b`` on ``[0, 1]``."""

    name = "beta"

    def __init__(self, a: float = 1.0, b: float = 1.0) -> None:
        self.a = _check_param("a", a, positive=True)
        self.b = _check_param("b", b, positive=True)
        super().__init__(0.0, 1.0)

    def _zcdf(self, z: np.ndarray) -> np.ndarray:
        return sc.betainc(self.a, self.b, np.clip(z, 0.0, 1.0))

    def _zsf(self, z: np.ndarray) -> np.ndarray:
        return sc.betaincc(self.a, self.b, np.clip(z, 0.0, 1.0))

    def _zppf(self, q: np.ndarray) -> np.ndarray:
        return sc.betaincinv(self.a, self.b, q)

    def _zisf(self, q: np.ndarray) -> np.ndarray:
        return sc.betainccinv(self.a, self.b, q)

    def _zpm_lo(self, z: np.ndarray) -> np.ndarray:
        return self.a / (self.a + self.b) * sc.betainc(self.a + 1, self.b, np.clip(z, 0.0, 1.0))

    def _zpm_hi(self, z: np.ndarray) -> np.ndarray:
        return self.a / (self.a + self.b) * sc.betaincc(self.a + 1, self.b, np.clip(z, 0.0, 1.0))

    def _zsupport(self) -> tuple[float, float]:
        return (0.0, 1.0)

    def to_scipy(self) -> Any:
        """``scipy.stats.beta(a, b)``."""
        return st.beta(self.a, self.b)

    def density_tv(self) -> float:
        """Total variation of the density: twice its maximum for ``a, b >= 1`` (unimodal); ``inf`` otherwise."""
        if self.a < 1 or self.b < 1:
            return math.inf
        if self.a == 1 and self.b == 1:
            return 2.0 * (1 + 1e-12)
        mode = (self.a - 1) / (self.a + self.b - 2)
        logpdf = (
            (self.a - 1) * (math.log(mode) if self.a > 1 else 0.0)
            + (self.b - 1) * (math.log1p(-mode) if self.b > 1 else 0.0)
            - sc.betaln(self.a, self.b)
        )
        return 2.0 * math.exp(logpdf) * (1 + 1e-9)

    def scaled_tv(self) -> float:
        """TV of ``s^2 p(s)`` for ``b >= 1`` (unimodal or increasing to its end jump): twice the peak."""
        if self.b < 1:
            return math.inf
        if self.b == 1:
            return 2.0 * self.a * (1 + 1e-12)
        m = (self.a + 1) / (self.a + self.b)
        logf = (self.a + 1) * math.log(m) + (self.b - 1) * math.log1p(-m) - sc.betaln(self.a, self.b)
        return 2.0 * math.exp(logf) * (1 + 1e-9)

    def _params(self) -> str:
        return f"{self.a:g}, {self.b:g}"


class ScipyContinuous(Continuous):
    """Any continuous 1-D frozen SciPy distribution with a finite mean.

    Partial moments are computed by adaptive quadrature (``frozen.expect``) and the quadrature's own error
    estimate is added to each cell term, so the quantization error is an upper bound only as far as QUADPACK's
    error estimate is one (the closed-form families above do not have this caveat).
    """

    name = "scipy"

    def __init__(self, frozen: Any) -> None:
        self.frozen = frozen
        super().__init__(0.0, 1.0)
        a, b = frozen.support()
        self._sup = (float(a), float(b))

    def _zcdf(self, z: np.ndarray) -> np.ndarray:
        return self.frozen.cdf(z)

    def _zsf(self, z: np.ndarray) -> np.ndarray:
        return self.frozen.sf(z)

    def _zppf(self, q: np.ndarray) -> np.ndarray:
        return self.frozen.ppf(q)

    def _zisf(self, q: np.ndarray) -> np.ndarray:
        return self.frozen.isf(q)

    def _pm(self, lo: float, hi: float) -> tuple[float, float]:
        from scipy import integrate

        if not hi > lo:
            return 0.0, 0.0
        val, abserr = integrate.quad(lambda x: x * self.frozen.pdf(x), lo, hi, limit=200, epsabs=1e-14)
        return float(val), float(abserr)

    def _zpm_lo(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        return np.vectorize(lambda t: self._pm(self._sup[0], float(t))[0])(z)

    def _zpm_hi(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        return np.vectorize(lambda t: self._pm(float(t), self._sup[1])[0])(z)

    def _zmedian(self) -> float:
        return float(self.frozen.median())

    def _zsupport(self) -> tuple[float, float]:
        return self._sup

    def mean(self) -> float:
        """E[X] from SciPy."""
        return float(self.frozen.mean())

    def _cell_bias_m2(
        self, l: np.ndarray, a: np.ndarray, r: np.ndarray, err_z: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        # Quadrature partial moments carry no certified error here: use only the rigorous first-order forms.
        finite = np.isfinite(l) & np.isfinite(r)
        with np.errstate(invalid="ignore"):
            m2 = np.where(finite, np.maximum(a - l, r - a) * err_z, np.inf)
        return err_z, m2

    def _cell_abs_dev(self, l: np.ndarray, a: np.ndarray, r: np.ndarray) -> np.ndarray:
        from scipy import integrate

        out = np.empty(np.shape(a))
        for i, (li, ai, ri) in enumerate(zip(np.ravel(l), np.ravel(a), np.ravel(r), strict=True)):
            total = 0.0
            for lo, hi in ((li, ai), (ai, ri)):
                if hi > lo:
                    val, err = integrate.quad(
                        lambda x, ai=ai: abs(x - ai) * self.frozen.pdf(x), lo, hi, limit=200, epsabs=1e-15
                    )
                    total += val + 2 * err
            out.flat[i] = total * (1 + 1e-9) + 1e-300
        return out

    def to_scipy(self) -> Any:
        """The wrapped frozen distribution."""
        return self.frozen

    def __repr__(self) -> str:
        return f"from_scipy({self.frozen.dist.name})"


def from_scipy(frozen: Any) -> Distribution:
    """Wrap a frozen continuous 1-D SciPy distribution (closed forms are used for the families known here).

    Raises:
        DistError: ``frozen`` is not a continuous frozen distribution or has no finite mean (Cauchy, ...).
    """
    dist = getattr(frozen, "dist", None)
    if dist is None or not hasattr(frozen, "cdf") or not isinstance(dist, st.rv_continuous):
        raise DistError(
            f"from_scipy(frozen): expected a frozen continuous SciPy distribution such as scipy.stats.norm(0, 1), "
            f"got {type(frozen).__name__}; use Discrete(values, weights) for discrete laws"
        )
    m = frozen.mean()
    if not np.isfinite(m):
        raise DistError(
            f"from_scipy({dist.name}): the distribution has no finite mean, so W1 errors are undefined; "
            "use a law with a finite first moment (for example a truncated version)"
        )
    shapes, loc, scale = dist._parse_args(*frozen.args, **frozen.kwds)
    loc, scale = float(loc), float(scale)
    if dist.name == "norm":
        return Normal(loc, scale)
    if dist.name == "uniform":
        return Uniform(loc, loc + scale)
    if dist.name == "expon" and loc == 0:
        return Exponential(1.0 / scale)
    if dist.name == "gamma" and loc == 0:
        return Gamma(shapes[0], scale)
    if dist.name == "lognorm" and loc == 0:
        return LogNormal(math.log(scale), shapes[0])
    if dist.name == "beta" and loc == 0 and scale == 1:
        return Beta(shapes[0], shapes[1])
    return ScipyContinuous(frozen)


class Discrete(Distribution):
    """A finitely supported law: ``values`` with probabilities ``weights`` (normalised)."""

    name = "discrete"

    def __init__(self, values: Any, weights: Any = None) -> None:
        super().__init__()
        v = np.asarray(values, dtype=float).reshape(-1)
        if v.size == 0:
            raise DistError("Discrete(values): values is empty; pass at least one value")
        if not np.all(np.isfinite(v)):
            raise DistError("Discrete(values): every value must be finite (found nan or inf)")
        w = np.full(v.size, 1.0 / v.size) if weights is None else np.asarray(weights, dtype=float).reshape(-1)
        if w.shape != v.shape:
            raise DistError(f"Discrete(values, weights): {v.size} values but {w.size} weights")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise DistError("Discrete(weights): weights must be finite, >= 0 and not all 0")
        self.values, self.probs = merge_duplicates(v, w / w.sum())
        self.upstream_w1 = 0.0
        self._support = (float(self.values[0]), float(self.values[-1]))

    def cdf(self, t: Any) -> np.ndarray:
        """P(X <= t)."""
        c = np.concatenate([[0.0], np.cumsum(self.probs)])
        return c[np.searchsorted(self.values, np.asarray(t, dtype=float), side="right")]

    def mean(self) -> float:
        """E[X]."""
        return float(self.values @ self.probs)

    def support(self) -> tuple[float, float]:
        """An interval containing the support."""
        return self._support

    def quantize(self, atoms: int, method: str = "auto") -> Quantized:
        """Keep the law as is when it has <= ``atoms`` atoms, else regroup monotonically (exact W1 cost)."""
        n = check_atoms(atoms)
        if method not in QUANTIZERS:
            raise DistError(f"quantizer={method!r} is unknown; use one of {', '.join(QUANTIZERS)}")
        sup = self.support()
        if self.values.size <= n:
            v = self.values
            return Quantized(v, self.probs, v.copy(), v.copy(), np.zeros(v.size), "exact", self.upstream_w1, sup)
        rg = regroup(self.values, self.probs, n)
        lo = np.full(rg.atoms.size, np.inf)
        hi = np.full(rg.atoms.size, -np.inf)
        np.minimum.at(lo, rg.piece_group, self.values[rg.piece_elem])
        np.maximum.at(hi, rg.piece_group, self.values[rg.piece_elem])
        err = rg.cost * (1 + 1e-12) + 1e-300
        return Quantized(rg.atoms, rg.weights, lo, hi, err, "regroup", self.upstream_w1, sup)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.values.size} atoms, mean={self.mean():.4g})"


class Empirical(Discrete):
    """The empirical law of ``samples`` (treated as the exact input law; no sampling error is added)."""

    name = "empirical"

    def __init__(self, samples: Any) -> None:
        s = np.asarray(samples, dtype=float).reshape(-1)
        if s.size == 0:
            raise DistError("Empirical(samples): samples is empty; pass at least one sample")
        super().__init__(s)


class ResultInput(Discrete):
    """A previous result used as an input: its atoms plus its certified W1 bound and support enclosure."""

    name = "result"

    def __init__(self, atoms: np.ndarray, weights: np.ndarray, w1_bound: float, support: tuple[float, float]):
        super().__init__(atoms, weights)
        self.upstream_w1 = float(w1_bound)
        self._support = (min(support[0], float(self.values[0])), max(support[1], float(self.values[-1])))


def as_distribution(obj: Any, name: str = "input") -> Distribution:
    """Turn an accepted input (a Distribution, a frozen SciPy law, a result, a number) into a Distribution."""
    if isinstance(obj, Distribution):
        return obj
    if hasattr(obj, "_as_input"):
        return obj._as_input()
    if hasattr(obj, "dist") and hasattr(obj, "cdf"):
        return from_scipy(obj)
    if isinstance(obj, int | float | np.number) and not isinstance(obj, bool):
        v = _check_param(name, obj)
        return Discrete([v])
    raise DistError(
        f"{name}={obj!r} is not a distribution; pass od.Normal(...), od.Uniform(...), od.from_scipy(frozen), "
        "od.Empirical(samples), od.Discrete(values, weights), a previous result or a number"
    )
