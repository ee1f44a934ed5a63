import pytest
import torch
import torch.nn.functional as F

from opgraph.ffa.errors import FFAError
from opgraph.ffa.functions import conv2d_fb, conv_transpose2d_fb, linear_fb
from opgraph.ffa.layers import FBConv2d, FBConvTranspose2d, FBLinear


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _grads(fn, *tensors):
    ts = [t.clone().requires_grad_(True) for t in tensors]
    out = fn(*ts)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(3))
    (out * g).sum().backward()
    return out.detach(), [t.grad for t in ts]


@pytest.mark.parametrize("bias", [True, False])
def test_linear_bp_mode_matches_autograd(bias):
    gen = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(5, 7, generator=gen), torch.randn(4, 7, generator=gen), torch.randn(4, generator=gen)
    bb = b if bias else None
    ref_out, ref = _grads(lambda x, w: F.linear(x, w, bb), x, w)
    out, got = _grads(lambda x, w: linear_fb(x, w, w, bb), x, w)
    torch.testing.assert_close(out, ref_out)
    for a, r in zip(got, ref, strict=True):
        torch.testing.assert_close(a, r)


@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 1, 1), (2, 3, 1), (1, 2, 2)])
def test_conv2d_bp_mode_matches_autograd(stride, padding, dilation):
    gen = torch.Generator().manual_seed(1)
    x, w = torch.randn(2, 3, 9, 9, generator=gen), torch.randn(4, 3, 3, 3, generator=gen)
    ref_out, ref = _grads(lambda x, w: F.conv2d(x, w, None, stride, padding, dilation), x, w)
    out, got = _grads(lambda x, w: conv2d_fb(x, w, w, None, stride, padding, dilation), x, w)
    torch.testing.assert_close(out, ref_out)
    for a, r in zip(got, ref, strict=True):
        torch.testing.assert_close(a, r)


@pytest.mark.parametrize("stride,padding,output_padding", [(1, 1, 0), (2, 1, 1), (2, 3, 1), (2, 0, 0)])
def test_conv_transpose2d_bp_mode_matches_autograd(stride, padding, output_padding):
    gen = torch.Generator().manual_seed(2)
    x, w = torch.randn(2, 4, 5, 5, generator=gen), torch.randn(4, 3, 3, 3, generator=gen)
    ref_out, ref = _grads(lambda x, w: F.conv_transpose2d(x, w, None, stride, padding, output_padding), x, w)
    out, got = _grads(lambda x, w: conv_transpose2d_fb(x, w, w, None, stride, padding, output_padding), x, w)
    torch.testing.assert_close(out, ref_out)
    for a, r in zip(got, ref, strict=True):
        torch.testing.assert_close(a, r)


def test_gradcheck_in_bp_mode():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 2, 6, 6, generator=gen, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: conv2d_fb(x, w, w, None, 2, 1, 1), (x, w))
    xt = torch.randn(2, 3, 3, 3, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: conv_transpose2d_fb(x, w, w, None, 2, 1, 1), (xt, w))


def test_feedback_weight_replaces_weight_in_input_gradient_only():
    gen = torch.Generator().manual_seed(5)
    x, w, fb = torch.randn(3, 6, generator=gen), torch.randn(4, 6, generator=gen), torch.randn(4, 6, generator=gen)
    g = torch.randn(3, 4, generator=gen)
    xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
    (linear_fb(xr, wr, fb) * g).sum().backward()
    torch.testing.assert_close(xr.grad, g @ fb)  # input gradient through the feedback weight
    torch.testing.assert_close(wr.grad, g.t() @ x)  # weight gradient: the ordinary local one
    # conv: the input gradient is what autograd gives for a conv with the feedback weight
    x4, w4, fb4 = torch.randn(2, 2, 7, 7), torch.randn(3, 2, 3, 3), torch.randn(3, 2, 3, 3)
    _, (gx_fb, gw_fb) = _grads(lambda x, w: conv2d_fb(x, w, fb4, None, 2, 1), x4, w4)
    _, (gx_ref, _) = _grads(lambda x, w: F.conv2d(x, fb4, None, 2, 1), x4, w4)
    _, (_, gw_ref) = _grads(lambda x, w: F.conv2d(x, w, None, 2, 1), x4, w4)
    torch.testing.assert_close(gx_fb, gx_ref)
    torch.testing.assert_close(gw_fb, gw_ref)
    assert not torch.allclose(gx_fb, _grads(lambda x, w: F.conv2d(x, w, None, 2, 1), x4, w4)[1][0])


def test_layer_modes():
    lin = FBLinear(5, 3)
    twin = FBLinear(3, 5)
    lin.set_feedback("twin", twin=twin)
    torch.testing.assert_close(lin.feedback_weight(), twin.weight.detach().t())
    lin.set_feedback("fixed", generator=torch.Generator().manual_seed(0))
    fa = lin.weight_fa.clone()
    lin.set_feedback("sign")
    assert torch.equal(torch.sign(lin.feedback_weight()), torch.sign(lin.weight.detach()))
    lin.set_feedback("fixed")
    assert torch.equal(lin.weight_fa, fa)  # the random feedback is fixed once drawn
    with pytest.raises(FFAError, match="mode"):
        lin.set_feedback("magic")
    with pytest.raises(FFAError, match="does not mirror"):
        lin.set_feedback("twin", twin=FBLinear(4, 4))
    conv = FBConv2d(2, 3, 3, padding=1, bias=False)
    tconv = FBConvTranspose2d(3, 2, 3, padding=1, bias=False)
    conv.set_feedback("twin", twin=tconv)
    tconv.set_feedback("twin", twin=conv)
    x = torch.randn(2, 2, 5, 5, requires_grad=True)
    tconv(conv(x)).sum().backward()
    assert x.grad is not None and conv.weight.grad is not None and tconv.weight.grad is not None
