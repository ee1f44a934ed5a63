"""Every feedback function and every layer mode against the analytic gradient.

The reference for a feedback function is plain autograd: the input gradient is the ordinary layer's input
gradient with the weight replaced by the feedback tensor, and the weight and bias gradients are the ordinary
ones. Finite differences (``torch.autograd.gradcheck``) check the exact gradients, biases included.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from opgraph.ffa.functions import conv2d_fb, conv_transpose2d_fb, linear_fb
from opgraph.ffa.layers import FBConv2d, FBConvTranspose2d, FBLinear, fixed_random_like


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _backward(fn, x, w, b, seed=7):
    """Gradients of ``sum(fn(x, w, b) * g)`` for a fixed random ``g``, with respect to x, w and b."""
    x, w, b = (t.clone().requires_grad_(True) for t in (x, w, b))
    out = fn(x, w, b)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    (out * g).sum().backward()
    return out.detach(), x.grad, w.grad, b.grad


# name -> (feedback function, plain op, x shape, weight shape, bias size, extra args)
CASES = {
    "linear_2d": (linear_fb, F.linear, (5, 7), (4, 7), 4, ()),
    "linear_3d": (linear_fb, F.linear, (2, 3, 7), (4, 7), 4, ()),
    "conv2d": (conv2d_fb, F.conv2d, (2, 3, 8, 8), (4, 3, 3, 3), 4, (2, 1, 1)),
    "conv2d_dilated": (conv2d_fb, F.conv2d, (2, 3, 9, 9), (4, 3, 3, 3), 4, (1, 2, 2)),
    "conv2d_groups": (conv2d_fb, F.conv2d, (2, 4, 7, 7), (6, 2, 3, 3), 6, (1, 1, 1, 2)),
    "conv_transpose2d": (conv_transpose2d_fb, F.conv_transpose2d, (2, 4, 5, 5), (4, 3, 3, 3), 3, (2, 1, 1)),
    "conv_transpose2d_s1": (conv_transpose2d_fb, F.conv_transpose2d, (2, 4, 5, 5), (4, 2, 2, 2), 2, (1, 0, 0)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_feedback_function_gradients_against_autograd(case):
    fb_fn, plain, xs, ws, nb, extra = CASES[case]
    gen = torch.Generator().manual_seed(11)
    x, w, fb = torch.randn(xs, generator=gen), torch.randn(ws, generator=gen), torch.randn(ws, generator=gen)
    b = torch.randn(nb, generator=gen)
    out, gx, gw, gb = _backward(lambda x, w, b: fb_fn(x, w, fb, b, *extra), x, w, b)
    ref_out, _, ref_gw, ref_gb = _backward(lambda x, w, b: plain(x, w, b, *extra), x, w, b)
    _, ref_gx, _, _ = _backward(lambda x, w, b: plain(x, fb, b, *extra), x, w, b)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(gx, ref_gx)  # input gradient through the feedback tensor
    torch.testing.assert_close(gw, ref_gw)  # weight and bias: the ordinary local gradients
    torch.testing.assert_close(gb, ref_gb)
    # The feedback tensor really matters: with the weight instead, the input gradient differs.
    _, wrong_gx, _, _ = _backward(lambda x, w, b: plain(x, w, b, *extra), x, w, b)
    assert not torch.allclose(gx, wrong_gx)


def test_linear_gradients_against_the_formula():
    gen = torch.Generator().manual_seed(3)
    x, w, fb, b = (torch.randn(s, generator=gen) for s in ((6, 5), (3, 5), (3, 5), (3,)))
    _, gx, gw, gb = _backward(lambda x, w, b: linear_fb(x, w, fb, b), x, w, b, seed=1)
    g = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(gx, g @ fb)
    torch.testing.assert_close(gw, g.t() @ x)
    torch.testing.assert_close(gb, g.sum(0))  # a sum over the batch, not a mean


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradcheck_exact_mode_with_bias(case):
    fb_fn, _, xs, ws, nb, extra = CASES[case]
    gen = torch.Generator().manual_seed(5)
    small = xs if len(xs) < 4 else (*xs[:2], 4, 4)
    x = torch.randn(small, generator=gen, requires_grad=True)
    w = torch.randn(ws, generator=gen, requires_grad=True)
    b = torch.randn(nb, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: fb_fn(x, w, w, b, *extra), (x, w, b))


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradcheck_weight_and_bias_with_a_separate_feedback_tensor(case):
    fb_fn, _, xs, ws, nb, extra = CASES[case]
    gen = torch.Generator().manual_seed(6)
    small = xs if len(xs) < 4 else (*xs[:2], 4, 4)
    x = torch.randn(small, generator=gen)
    fb = torch.randn(ws, generator=gen)
    w = torch.randn(ws, generator=gen, requires_grad=True)
    b = torch.randn(nb, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w, b: fb_fn(x, w, fb, b, *extra), (w, b))


def _layers():
    torch.manual_seed(0)
    lin = FBLinear(6, 4)
    conv = FBConv2d(3, 5, 3, stride=2, padding=1)
    convt = FBConvTranspose2d(5, 3, 3, stride=2, padding=1, output_padding=1)
    twins = {"lin": nn.Linear(4, 6), "conv": nn.ConvTranspose2d(5, 3, 3), "convt": nn.Conv2d(3, 5, 3)}
    xs = {"lin": (3, 6), "conv": (2, 3, 7, 7), "convt": (2, 5, 4, 4)}
    return {"lin": lin, "conv": conv, "convt": convt}, twins, xs


def _plain(name, layer, x, w):
    if name == "lin":
        return F.linear(x, w, layer.bias)
    if name == "conv":
        return F.conv2d(x, w, layer.bias, layer.stride, layer.padding, layer.dilation, layer.groups)
    return F.conv_transpose2d(x, w, layer.bias, layer.stride, layer.padding, layer.output_padding, 1, layer.dilation)


@pytest.mark.parametrize("name", ["lin", "conv", "convt"])
@pytest.mark.parametrize("mode", ["exact", "fixed", "twin", "sign"])
def test_layer_modes_use_the_documented_feedback_tensor(name, mode):
    layers, twins, xs = _layers()
    layer, twin = layers[name], twins[name]
    layer.set_feedback(mode, twin=twin if mode == "twin" else None, generator=torch.Generator().manual_seed(2))
    w = layer.weight.detach()
    expected_fb = {
        "exact": w,
        "fixed": getattr(layer, "weight_fa", None),
        "twin": twin.weight.detach().t() if name == "lin" else twin.weight.detach(),
        "sign": torch.sign(w) * w.abs().mean(),  # sign symmetry keeps the mean |w| scale
    }[mode]
    x = torch.randn(xs[name], generator=torch.Generator().manual_seed(4), requires_grad=True)
    out = layer(x)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(9))
    (out * g).sum().backward()
    xr = x.detach().clone().requires_grad_(True)
    wr = w.clone().requires_grad_(True)
    ref_out = _plain(name, layer, xr, wr)
    torch.testing.assert_close(out.detach(), ref_out.detach())
    (ref_out * g).sum().backward()
    torch.testing.assert_close(layer.weight.grad, wr.grad)
    xf = x.detach().clone().requires_grad_(True)
    (_plain(name, layer, xf, expected_fb) * g).sum().backward()
    torch.testing.assert_close(x.grad, xf.grad)
    if mode != "exact":
        assert not torch.allclose(x.grad, xr.grad)


@pytest.mark.parametrize("shape", [(4, 6), (5, 3, 3, 3), (3, 5, 2, 2)])
def test_fixed_random_feedback_has_the_kaiming_fan_out_bound(shape):
    w = torch.zeros(shape)
    fa = fixed_random_like(w, torch.Generator().manual_seed(0))
    fan_out = shape[0] * (math.prod(shape[2:]) if len(shape) > 2 else 1)
    bound = math.sqrt(6.0 / fan_out)
    assert fa.shape == w.shape
    assert float(fa.abs().max()) <= bound
    assert float(fa.abs().max()) >= 0.7 * bound  # spread over the whole range, not a narrower one
    assert abs(float(fa.mean())) < 0.5 * bound


@pytest.mark.parametrize("case", ["linear_2d", "conv2d", "conv_transpose2d"])
def test_input_gradient_alone_and_weight_gradient_alone(case):
    # A frozen layer still passes the error down (x needs a gradient, the weight does not), and vice versa.
    fb_fn, plain, xs, ws, nb, extra = CASES[case]
    gen = torch.Generator().manual_seed(12)
    x, w, fb = torch.randn(xs, generator=gen), torch.randn(ws, generator=gen), torch.randn(ws, generator=gen)
    xr = x.clone().requires_grad_(True)
    out = fb_fn(xr, w, fb, None, *extra)
    g = torch.randn(out.shape, generator=gen)
    (out * g).sum().backward()
    xf = x.clone().requires_grad_(True)
    (plain(xf, fb, None, *extra) * g).sum().backward()
    torch.testing.assert_close(xr.grad, xf.grad)
    wr = w.clone().requires_grad_(True)
    (fb_fn(x, wr, fb, None, *extra) * g).sum().backward()
    wf = w.clone().requires_grad_(True)
    (plain(x, wf, None, *extra) * g).sum().backward()
    torch.testing.assert_close(wr.grad, wf.grad)


def test_functional_defaults_are_the_plain_layer_defaults():
    gen = torch.Generator().manual_seed(13)
    x, w = torch.randn(2, 3, 7, 7, generator=gen), torch.randn(4, 3, 3, 3, generator=gen)
    torch.testing.assert_close(conv2d_fb(x, w, w), F.conv2d(x, w))
    xt, wt = torch.randn(2, 4, 5, 5, generator=gen), torch.randn(4, 3, 3, 3, generator=gen)
    torch.testing.assert_close(conv_transpose2d_fb(xt, wt, wt), F.conv_transpose2d(xt, wt))
    xl, wl = torch.randn(3, 5, generator=gen), torch.randn(2, 5, generator=gen)
    torch.testing.assert_close(linear_fb(xl, wl, wl), F.linear(xl, wl))


def test_layer_construction_rules_and_copies():
    from opgraph.ffa.errors import FFAError
    from opgraph.ffa.layers import is_fb_layer, to_fb

    assert FBLinear(3, 2).bias is not None  # bias on by default, as in nn.Linear
    assert FBLinear(3, 2, bias=False).bias is None
    with pytest.raises(FFAError, match="padding"):
        FBConv2d(2, 3, 3, padding="same")
    with pytest.raises(FFAError, match="padding"):
        FBConv2d(2, 3, 3, padding=1, padding_mode="reflect")
    assert all(is_fb_layer(m) for m in (FBLinear(3, 2), FBConv2d(2, 3, 3), FBConvTranspose2d(3, 2, 3)))
    assert not is_fb_layer(nn.Linear(3, 2)) and not is_fb_layer(nn.Conv2d(2, 3, 3))
    for plain in (nn.Linear(3, 2), nn.Linear(3, 2, bias=False), nn.Conv2d(2, 3, 3), nn.Conv2d(2, 3, 3, bias=False)):
        fb = to_fb(plain)
        assert is_fb_layer(fb) and fb is not plain
        torch.testing.assert_close(fb.weight, plain.weight)
        assert (fb.bias is None) == (plain.bias is None)
        if plain.bias is not None:
            torch.testing.assert_close(fb.bias, plain.bias)
