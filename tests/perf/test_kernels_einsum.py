"""Einsum contractions (XLNet, Funnel) become matmul / batched matmul kernels of the tile space."""

import math

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from opgraph.graph import from_export  # noqa: E402
from opgraph.perf.kernels import extract_kernels  # noqa: E402


class Einsums(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 2, 4))  # h n d: a parameter operand is no graph node

    def forward(self, x, y):  # x: (i, b, h), y: (i, j)
        q = torch.einsum("ibh,hnd->ibnd", x, self.w)  # projection: M = i*b, N = n*d, K = h
        s = torch.einsum("ibnd,jbnd->bnij", q, q)  # attention scores: batch b*n, M = i, N = j, K = d
        a = torch.relu(torch.einsum("bnij,jbnd->ibnd", s, q))  # scores x values, ReLU epilogue
        outer = torch.einsum("i,j->ij", y[:, 0], y[0])  # no contraction: not a matmul
        diag = torch.einsum("ii->i", y[:, :5])  # a repeated letter: not a matmul
        return a.sum() + outer.sum() + diag.sum()


def test_einsum_contractions_are_matmul_kernels():
    x, y = torch.randn(5, 3, 8), torch.randn(5, 6)
    g = from_export(Einsums().eval(), [x, y])
    ks = extract_kernels(g, "m")
    assert [(k.op, k.dims) for k in ks] == [
        ("matmul", (15, 8, 8)),
        ("batch_matmul", (6, 5, 5, 4)),
        ("batch_matmul", (6, 5, 4, 5)),
    ]
    assert [k.activation for k in ks] == ["none", "none", "relu"]
    # the kernel does the einsum's multiply-adds: the product of every letter's size
    sizes = {"i": 5, "b": 3, "h": 8, "n": 2, "d": 4, "j": 5}
    for k, letters in zip(ks, ("ibhnd", "ibndj", "bnijd")):
        assert math.prod(k.dims) == math.prod(sizes[c] for c in letters)
    assert all(k.kernel_spec() is not None for k in ks)
