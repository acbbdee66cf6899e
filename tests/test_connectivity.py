"""NIR synapse nodes as matrices (deploy/connectivity): each expanded matrix does what PyTorch's own
layer does (NIR adopts PyTorch's Conv2d and pooling conventions), and a path of them composes."""

import nir
import numpy as np
import pytest
import torch

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
