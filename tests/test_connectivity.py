"""NIR synapse nodes as matrices (deploy/connectivity): each expanded matrix does what PyTorch's own
layer does (NIR adopts PyTorch's Conv2d and pooling conventions), and a path of them composes."""

import nir
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snn_deploy.deploy.stages.connectivity import linear_map
from snn_deploy.deploy.errors import DeployError


def _apply(node, shape, x):
    m = linear_map(node, shape, "node")
    return (m.matrix @ x.reshape(-1) + m.bias).reshape(m.output_shape)


@pytest.mark.parametrize("stride, padding, dilation, groups", [
    (1, 0, 1, 1), (2, 1, 1, 1), ((2, 1), (1, 2), 1, 1), (1, 1, 2, 1), (1, 1, 1, 2)])
def test_conv2d_matrix_equals_torch_conv2d(stride, padding, dilation, groups):
    rng = np.random.default_rng(0)
    weight, bias = rng.normal(size=(4, 4 // groups, 3, 3)), rng.normal(size=4)
    x = rng.random((4, 9, 8))
    node = nir.Conv2d(input_shape=(9, 8), weight=weight, stride=stride, padding=padding, dilation=dilation,
                      groups=groups, bias=bias)
    expected = torch.nn.functional.conv2d(torch.as_tensor(x)[None], torch.as_tensor(weight), torch.as_tensor(bias),
                                          stride=stride, padding=padding, dilation=dilation, groups=groups)[0]
    np.testing.assert_allclose(_apply(node, (4, 9, 8), x), expected.numpy(), rtol=0, atol=1e-12)


@st.composite
def conv1d_cases(draw):
    """A Conv1d of drawn groups, channels, kernel, stride, dilation and padding (an integer, "valid", or "same"
    where PyTorch allows it: stride 1 and an even dilated kernel span) on a length it fits."""
    groups = draw(st.integers(1, 3))
    in_channels, out_channels = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 3))
    kernel, stride, dilation = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    paddings = [st.integers(0, 2), st.just("valid")]
    if stride == 1 and dilation * (kernel - 1) % 2 == 0:
        paddings.append(st.just("same"))
    padding = draw(st.one_of(paddings))
    span = dilation * (kernel - 1) + 1
    length = draw(st.integers(max(1, span - 2 * (padding if isinstance(padding, int) else 0)), span + 8))
    return groups, in_channels, out_channels, kernel, stride, padding, dilation, length, draw(st.integers(0, 2**16))


@settings(max_examples=60, deadline=None)
@given(case=conv1d_cases())
def test_conv1d_matrix_equals_torch_conv1d(case):
    """Integer weights and inputs: both sums are exact, so the expansion must equal PyTorch's conv1d exactly."""
    groups, in_channels, out_channels, kernel, stride, padding, dilation, length, seed = case
    rng = np.random.default_rng(seed)
    weight = rng.integers(-4, 5, (out_channels, in_channels // groups, kernel)).astype(float)
    bias, x = rng.integers(-3, 4, out_channels).astype(float), rng.integers(0, 3, (in_channels, length)).astype(float)
    node = nir.Conv1d(input_shape=length, weight=weight, stride=stride, padding=padding, dilation=dilation,
                      groups=groups, bias=bias)
    expected = torch.nn.functional.conv1d(torch.as_tensor(x)[None], torch.as_tensor(weight), torch.as_tensor(bias),
                                          stride=stride, padding=padding, dilation=dilation, groups=groups)[0]
    np.testing.assert_array_equal(_apply(node, (in_channels, length), x), expected.numpy())
    assert tuple(node.output_type["output"]) == tuple(expected.shape)


def test_conv1d_with_same_padding_and_an_even_kernel_is_refused():
    node = nir.Conv1d(input_shape=6, weight=np.ones((1, 1, 2)), stride=1, padding="same", dilation=1, groups=1,
                      bias=np.zeros(1))
    with pytest.raises(DeployError, match="node node: padding 'same' with an even kernel pads unevenly"):
        linear_map(node, (1, 6), "node")


@pytest.mark.parametrize("kind", ["SumPool2d", "AvgPool2d"])
def test_pooling_matrices_equal_torch_pooling(kind):
    x = np.random.default_rng(1).random((3, 8, 6))
    node = getattr(nir, kind)(kernel_size=np.array([2, 3]), stride=np.array([2, 3]), padding=np.array([1, 0]))
    average = torch.nn.functional.avg_pool2d(torch.as_tensor(x)[None], (2, 3), (2, 3), (1, 0))[0].numpy()
    expected = average if kind == "AvgPool2d" else average * 6
    np.testing.assert_allclose(_apply(node, (3, 8, 6), x), expected, rtol=0, atol=1e-12)


def test_flatten_is_the_c_order_identity_and_affine_takes_its_output():
    x = np.arange(24.0).reshape(2, 3, 4)
    flat = linear_map(nir.Flatten(input_type={"input": np.array([2, 3, 4])}, start_dim=0), (2, 3, 4), "f")
    np.testing.assert_array_equal(flat.matrix @ x.reshape(-1), x.reshape(-1))
    assert flat.output_shape == (24,)
    with pytest.raises(DeployError, match="node a: weight shape"):
        linear_map(nir.Affine(weight=np.ones((2, 23)), bias=np.zeros(2)), (24,), "a")


def test_a_node_the_chip_cannot_run_is_named_with_its_type():
    with pytest.raises(DeployError, match="node t is a Threshold, which the target cannot run"):
        linear_map(nir.Threshold(threshold=np.ones(3)), (3,), "t")
