"""check_outputs at its thresholds, with outputs written by hand (issue 13: the element-wise output check).

``check_outputs`` reads only ``outputs`` and ``grads`` of the two runs, so small stand-ins carry hand-made tensors
whose element-wise error (``max|a - b| / max|b|``) is known exactly.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from opgraph.energy.differ import AGREE_RTOL, PRECISION_RTOL, _canonical, check_outputs
from opgraph.energy.errors import EnergyError


def _run(*outputs, grads=()):
    return SimpleNamespace(outputs=tuple(outputs), grads=tuple(grads))


def _ramp(n=1000):
    return torch.linspace(-1.0, 1.0, n, dtype=torch.float64)


def test_thresholds_are_the_documented_ones():
    assert (AGREE_RTOL, PRECISION_RTOL) == (1e-2, 0.1)


@pytest.mark.parametrize(
    ("err", "strict", "precision"),
    [(0.0, True, True), (0.009, True, True), (0.011, False, True), (0.099, False, True), (0.101, False, False)],
)
def test_one_element_off_by_a_known_relative_error(err, strict, precision):
    # The middle element (about 0) moved by err * max|b|: the element-wise error is err. The fingerprints' mean,
    # std and mean|x| move by about err / 1000 (the scale is about 0.58) and min/max not at all, inside both
    # presets; so the element-wise check alone decides, at 0.01 (strict) and 0.1 (precision).
    b = _ramp()
    a = b.clone()
    a[500] += err * float(b.abs().max())
    out = check_outputs(_run(a), _run(b))
    assert out["max_rel_error"] == pytest.approx(err, abs=1e-12)
    assert (out["strict"], out["agree"]) == (strict, strict)
    assert out["precision"] is precision
    assert out["canonicalize"] is None and "shape_mismatch" not in out


def test_the_worst_output_decides_and_every_output_is_checked():
    b = _ramp()
    off = b.clone()
    off[3] += 0.05
    out = check_outputs(_run(b.clone(), off, b.clone()), _run(b, b, b))
    assert out["max_rel_error"] == pytest.approx(0.05) and not out["strict"] and out["precision"]
    out = check_outputs(_run(off, b.clone()), _run(b, b))
    assert out["max_rel_error"] == pytest.approx(0.05) and not out["strict"]


def test_a_permutation_with_equal_fingerprints_does_not_agree():
    b = _ramp()
    a = b.flip(0)  # the same multiset of values: equal fingerprints, positions differ
    out = check_outputs(_run(a), _run(b))
    assert out["max_rel_error"] == pytest.approx(2.0) and not out["strict"] and not out["precision"]
    assert check_outputs(_run(a), _run(b), "sort")["strict"]


def test_different_fingerprints_with_small_element_errors_do_not_agree():
    # every element off by 0.5 % of max|b| (element-wise within strict) but the mean moves by 0.5 % of a scale
    # of about 0.58: past the strict fingerprint tolerance (1e-3 x scale), inside the precision one (3e-2)
    b = _ramp()
    a = b + 0.005
    out = check_outputs(_run(a), _run(b))
    assert out["max_rel_error"] == pytest.approx(0.005)
    assert not out["strict"] and out["precision"]


def test_shape_mismatch_names_the_outputs_and_is_infinitely_wrong():
    b = torch.arange(12.0).reshape(3, 4)
    out = check_outputs(_run(b.clone(), b.T.clone(), b.clone()), _run(b, b, b))
    assert out["shape_mismatch"] == [1] and out["max_rel_error"] == math.inf
    assert not out["strict"] and not out["precision"] and not out["agree"]
    flat = check_outputs(_run(b.reshape(-1)), _run(b), "flatten")
    assert flat["strict"] and flat["max_rel_error"] == 0.0 and flat["canonicalize"] == "flatten"


def test_output_counts_must_match():
    b = _ramp(10)
    out = check_outputs(_run(b, b), _run(b))
    assert out == {
        "n_outputs": (2, 1),
        "strict": False,
        "precision": False,
        "max_rel_error": math.inf,
        "agree": False,
        "canonicalize": None,
    }


def test_gradients_are_compared_as_they_are_and_must_exist_on_both_sides():
    b = _ramp(10)
    g = torch.arange(6.0).reshape(2, 3)
    same = check_outputs(_run(b, grads=[("w", g)]), _run(b.clone(), grads=[("w", g.clone())]))
    assert same["strict"] and same["grads_compared"] == 1
    # a transposed gradient is wrong even under a declared order-free canonicalisation of the outputs
    wrong = check_outputs(_run(b, grads=[("w", g.T.contiguous())]), _run(b.clone(), grads=[("w", g)]), "sort")
    assert wrong["shape_mismatch"] == [1] and not wrong["strict"]
    perm = check_outputs(_run(b, grads=[("w", g.flip(1))]), _run(b.clone(), grads=[("w", g)]), "sort")
    assert perm["max_rel_error"] == pytest.approx(2.0 / 5.0) and not perm["strict"] and "shape_mismatch" not in perm
    missing = check_outputs(_run(b, grads=[("w", g)]), _run(b.clone()))
    assert missing["grads_compared"] == 0 and missing["grads"] == [1, 0]
    assert not missing["strict"] and not missing["precision"] and not missing["agree"]
    assert missing["max_rel_error"] == 0.0
    only_b = check_outputs(_run(b), _run(b.clone(), grads=[("w", g)]))
    assert only_b["grads"] == [0, 1] and not only_b["agree"]
    plain = check_outputs(_run(b), _run(b.clone()))
    assert "grads_compared" not in plain and plain["agree"]


def test_canonical_forms():
    t = torch.tensor([[3.0, -1.0], [2.0, 0.5]])
    assert _canonical(t, None) is t
    assert _canonical(t, "flatten").tolist() == [3.0, -1.0, 2.0, 0.5]
    assert _canonical(t, "sort").tolist() == [-1.0, 0.5, 2.0, 3.0]
    assert _canonical(t, lambda x: x * 2).tolist() == [[6.0, -2.0], [4.0, 1.0]]
    with pytest.raises(EnergyError, match="not a tensor"):
        _canonical(t, lambda x: x.tolist())
    real = torch.tensor([2.0 + 0j, -1.0 + 1e-9j, 0.5 + 0j])
    assert _canonical(real, "sort").tolist() == [-1.0, 0.5, 2.0]  # by real part: imaginary parts vanish
    cplx = torch.tensor([3j, -1.0 + 0j, 0.5 + 0.1j])
    assert _canonical(cplx, "sort").tolist() == pytest.approx([float(abs(0.5 + 0.1j)), 1.0, 3.0])  # by modulus
    # "imaginary parts vanish" is relative to the largest modulus: 1e-5 is small next to 100, not next to 2
    assert _canonical(torch.tensor([100 + 0j, -2 + 1e-5j]), "sort").tolist() == [-2.0, 100.0]
    assert _canonical(torch.tensor([3 + 0j, -2 + 1e-5j]), "sort").tolist() == pytest.approx([2.0, 3.0])
    assert _canonical(torch.zeros(3, dtype=torch.complex64), "sort").tolist() == [0.0, 0.0, 0.0]
    # an empty complex output sorts to an empty tensor (it raised a RuntimeError from max() before)
    assert _canonical(torch.zeros(0, dtype=torch.complex64), "sort").numel() == 0
    with pytest.raises(EnergyError, match="canonicalize='rows'"):
        check_outputs(_run(t), _run(t), "rows")
    assert check_outputs(_run(t), _run(t), lambda x: x.sum(0))["canonicalize"] == "callable"


def test_the_thresholds_are_inclusive():
    # max|b| = 1 exactly and b[500] = 0 exactly: moving it to 0.01 (0.1) gives an element-wise error of exactly
    # AGREE_RTOL (PRECISION_RTOL), which still agrees; fingerprints move by 1e-4 at most, inside both presets
    b = _ramp(1001)
    b[500] = 0.0
    for err, strict in ((AGREE_RTOL, True), (PRECISION_RTOL, False)):
        a = b.clone()
        a[500] = err
        out = check_outputs(_run(a), _run(b))
        assert out["max_rel_error"] == err
        assert out["strict"] is strict and out["precision"] is True


def test_precision_needs_equivalent_fingerprints_too():
    # every element off by 5 % of max|b|: element-wise within the precision gate (0.1), but the mean moves by 0.05,
    # past the precision fingerprint tolerance (0.03 x scale, scale about 0.58)
    b = _ramp()
    out = check_outputs(_run(b + 0.05), _run(b))
    assert out["max_rel_error"] == pytest.approx(0.05)
    assert not out["precision"] and not out["strict"]


def test_complex_sort_threshold_is_inclusive():
    big = float(2**20)
    edge = torch.tensor([-big + 0j, complex(1.0, 1e-6 * big)], dtype=torch.complex128)
    assert _canonical(edge, "sort").tolist() == [-big, 1.0]  # imaginary part exactly 1e-6 x the scale: real part
    above = torch.tensor([-big + 0j, complex(1.0, 1.5e-6 * big)], dtype=torch.complex128)
    assert _canonical(above, "sort").tolist() == pytest.approx([abs(complex(1.0, 1.5e-6 * big)), big])  # modulus
