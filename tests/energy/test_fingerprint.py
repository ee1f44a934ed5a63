import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from opgraph.energy.fingerprint import TOLERANCES, Fingerprint, equivalent, fingerprint, max_relative_error


def test_layout_invariance():
    x = torch.randn(8, 16, 4)
    for y in (
        x.permute(2, 0, 1),
        x.transpose(0, 1).contiguous(),
        x.reshape(-1),
        x.contiguous(memory_format=torch.contiguous_format),
    ):
        assert equivalent(fingerprint(x), fingerprint(y))


def test_different_values_do_not_match():
    x = torch.randn(64, 64)
    assert not equivalent(fingerprint(x), fingerprint(x * 1.01))
    assert not equivalent(fingerprint(x), fingerprint(torch.randn(64, 64)))
    assert not equivalent(fingerprint(x), fingerprint(torch.randn(32, 64)))  # numel bucket


def test_precision_preset_is_looser():
    x = torch.randn(256, 256)
    y = x.to(torch.bfloat16).float()
    assert equivalent(fingerprint(x), fingerprint(y), TOLERANCES["precision"])
    assert equivalent(fingerprint(x.double()), fingerprint(x), TOLERANCES["strict"])


def test_ints_exact_and_bool_as_int():
    a = torch.tensor([1, 2, 3])
    assert equivalent(fingerprint(a), fingerprint(a.flip(0)))
    assert not equivalent(fingerprint(a), fingerprint(torch.tensor([1, 2, 4])))
    assert fingerprint(torch.tensor([True, False])).kind == "int"


def test_complex_with_zero_imag_matches_real():
    s = torch.randn(16, 16, dtype=torch.float64)
    s = s + s.T
    a = fingerprint(torch.linalg.eigvals(s))
    b = fingerprint(torch.linalg.eigvalsh(s))
    assert a.kind == "float"
    assert equivalent(a, b)
    z = torch.randn(10, dtype=torch.complex64)
    assert fingerprint(z).kind == "complex"


def test_roundtrip_and_error():
    fp = fingerprint(torch.randn(5))
    assert Fingerprint.from_list(fp.to_list()) == fp
    x = torch.randn(100)
    assert max_relative_error(x, x) == 0
    assert max_relative_error(x, torch.randn(3)) == math.inf
    assert max_relative_error(x, x * 1.1) == pytest.approx(
        0.1 * x.abs().max().item() / (1.1 * x.abs().max().item()), rel=1e-5
    )


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 200), st.integers(0, 10_000))
def test_permutation_invariance_property(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g)
    perm = torch.randperm(n, generator=g)
    assert equivalent(fingerprint(x), fingerprint(x[perm]))
