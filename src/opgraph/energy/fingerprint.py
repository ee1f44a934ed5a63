"""Layout-independent tensor fingerprints and a tolerance test between them.

A fingerprint is a short tuple of permutation-invariant statistics, so a tensor and any permutation,
transpose or re-striding of it have the same fingerprint (Magneton's released matcher compares numel,
mean and std; a few more moments are added here to reduce chance matches).

* float: ``(mean, std, mean|x|, min, max)`` (accumulated in float32/float64, reported as float64).
* int / bool: exact ``(sum, sum of squares, min, max)``.
* nested tensors: the fingerprint of their components' elements taken together.
* complex: the real part's float fingerprint when the imaginary part is negligible (so ``eigvals`` of a
  symmetric matrix matches ``eigvalsh``), else the moduli's fingerprint with kind ``"complex"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: Tolerance presets: relative to the tensor's scale (root mean square).
TOLERANCES: dict[str, float] = {"strict": 1e-3, "precision": 3e-2}


@dataclass(frozen=True)
class Fingerprint:
    """Permutation-invariant summary of one tensor.

    Attributes:
        numel: Number of elements.
        kind: ``"float"``, ``"int"`` or ``"complex"`` (bool counts as int).
        stats: The statistics listed in the module docstring.
    """

    numel: int
    kind: str
    stats: tuple[float, ...]

    @property
    def signature(self) -> tuple[int, str]:
        """Bucket key: only fingerprints with equal signatures can be equivalent."""
        return (self.numel, self.kind)

    @property
    def scale(self) -> float:
        """Root mean square of the tensor (floats), used to make the tolerance relative."""
        if self.kind == "int" or not self.stats:
            return 1.0
        mean, std = self.stats[0], self.stats[1]
        return math.sqrt(mean * mean + std * std)

    @property
    def constant(self) -> bool:
        """True for tensors whose elements are all equal (uninformative as cut points)."""
        if not self.stats:
            return True
        if self.kind == "int":
            return self.stats[2] == self.stats[3]
        return self.stats[3] == self.stats[4]

    def to_list(self) -> list[Any]:
        """JSON form."""
        return [self.numel, self.kind, list(self.stats)]

    @classmethod
    def from_list(cls, data: list[Any]) -> Fingerprint:
        """Inverse of :meth:`to_list`."""
        return cls(int(data[0]), str(data[1]), tuple(float(x) for x in data[2]))


def fingerprint(tensor: Any) -> Fingerprint:
    """Compute the fingerprint of a torch tensor (any device, dtype or layout)."""
    import torch

    t = tensor.detach()
    if t.is_nested:  # a nested tensor: the fingerprint of its components' elements, one after the other
        parts = [c.reshape(-1) for c in t.unbind()]
        t = torch.cat(parts) if parts else torch.empty(0, dtype=t.dtype, device=t.device)
    n = int(t.numel())
    if t.is_complex():
        if n == 0:
            return Fingerprint(0, "float", ())
        imag = t.imag.abs().max().item()
        real = t.real
        scale = real.abs().max().item()
        if imag <= 1e-6 * max(scale, 1e-30):
            return _float_fp(real)
        fp = _float_fp(t.abs())
        return Fingerprint(fp.numel, "complex", fp.stats)
    if n == 0:
        return Fingerprint(0, "float" if t.is_floating_point() else "int", ())
    if not t.is_floating_point():
        x = t.to(torch.int64) if t.dtype == torch.bool else t.long()
        s = x.sum().item()
        ss = (x.double() * x.double()).sum().item()
        return Fingerprint(n, "int", (float(s), float(ss), float(x.min().item()), float(x.max().item())))
    return _float_fp(t)


def _float_fp(t: Any) -> Fingerprint:
    import torch

    x = t.reshape(-1)
    n = int(x.numel())
    if n == 0:
        return Fingerprint(0, "float", ())
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    # single-pass reductions (pairwise-summed by torch): sum, L2 norm, L1 sum, min/max; std from E[x^2] - E[x]^2
    # (its cancellation error is far below the tolerance, which is relative to the root mean square)
    lo, hi = torch.aminmax(x)
    vals = torch.stack([x.sum(), torch.linalg.vector_norm(x), x.abs().sum(), lo, hi]).double().tolist()
    total, l2, l1, lo_v, hi_v = vals
    mean = total / n
    var = max(l2 * l2 / n - mean * mean, 0.0)
    return Fingerprint(n, "float", (mean, math.sqrt(var), l1 / n, lo_v, hi_v))


def equivalent(a: Fingerprint, b: Fingerprint, rtol: float = TOLERANCES["strict"]) -> bool:
    """Whether two fingerprints describe the same values up to layout, within ``rtol``.

    Floats: mean, std and mean|x| must agree within ``rtol x scale``; min and max within ``10 x rtol x scale``.
    Ints: exact equality.
    """
    if a.signature != b.signature:
        return False
    if a.kind == "int":
        return a.stats == b.stats
    if not a.stats or not b.stats:
        return a.stats == b.stats
    if any(not math.isfinite(v) for v in a.stats + b.stats):
        return all((x == y) or (math.isnan(x) and math.isnan(y)) for x, y in zip(a.stats, b.stats, strict=True))
    scale = max(a.scale, b.scale, 1e-30)
    tol = rtol * scale
    for i in range(3):
        if abs(a.stats[i] - b.stats[i]) > tol:
            return False
    return abs(a.stats[3] - b.stats[3]) <= 10 * tol and abs(a.stats[4] - b.stats[4]) <= 10 * tol


def max_relative_error(a: Any, b: Any) -> float:
    """Element-wise disagreement of two tensors of equal numel: ``max|a-b| / max|b|`` (layout as stored).

    Tensors of different shapes are compared after flattening when their numel matches; otherwise ``inf``.
    """
    import torch

    x = a.detach()
    y = b.detach()
    if x.is_complex() or y.is_complex():
        x = torch.view_as_real(x.resolve_conj()) if x.is_complex() else x
        y = torch.view_as_real(y.resolve_conj()) if y.is_complex() else y
    if x.numel() != y.numel():
        return math.inf
    x = x.reshape(-1).to(torch.float64).cpu()
    y = y.reshape(-1).to(torch.float64).cpu()
    if x.numel() == 0:
        return 0.0
    denom = max(float(y.abs().max().item()), 1e-30)
    return float((x - y).abs().max().item()) / denom
