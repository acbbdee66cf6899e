"""NIR synapse nodes as matrices: what each one does to its input, as y = M x + b on flat vectors.

The chip has one kind of synapse: a dense (or sparse) weight matrix between two populations. A
path of NIR synapse nodes (Affine, Linear, Scale, Conv2d, SumPool2d, AvgPool2d, Flatten) between
two neuron groups is linear, so it composes into one such matrix. Convolutions are expanded:
every output position gets its own copy of the shared kernel (weight sharing is not a feature of
the chip's synapse memory; the compile report counts the synapses this costs).

Every array is C-ordered: a (C, H, W) activation is flattened to index c H W + h W + w, which is
also what NIR's Flatten does. Conv2d and the pools follow PyTorch's conventions, which NIR
adopts: cross-correlation (no kernel flip), zero padding, output size
floor((H + 2 p - d (k - 1) - 1) / s) + 1, AvgPool2d counting the padded zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DeployError

SYNAPSE_TYPES = ("Affine", "Linear", "Scale", "Conv2d", "SumPool2d", "AvgPool2d", "Flatten")


@dataclass(frozen=True)
class LinearMap:
    """y = matrix x + bias on flat vectors; ``output_shape`` is y's shape before flattening."""

    matrix: np.ndarray  # (output size, input size)
    bias: np.ndarray  # (output size,)
    output_shape: tuple[int, ...]


def _pair(value, name: str, node_name: str) -> tuple[int, int]:
    array = np.atleast_1d(np.asarray(value)).astype(np.int64).reshape(-1)
    if array.size == 1:
        array = np.repeat(array, 2)
    if array.size != 2:
        raise DeployError(f"node {node_name}: {name} must be one or two integers, got {value!r}")
    return int(array[0]), int(array[1])


def _finite(node_name: str, name: str, array: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(array)):
        raise DeployError(f"node {node_name}: {name} contains NaN or infinity")
    return array


def _window_map(node_name: str, in_shape: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int],
                padding: tuple[int, int], dilation: tuple[int, int]):
    """Output size and, for every (output y, output x, kernel row, kernel column), the input pixel it reads
    (or -1 where that falls in the zero padding)."""
    if len(in_shape) != 3:
        raise DeployError(f"node {node_name}: expects a (channels, height, width) input, got shape {in_shape}")
    _, height, width = in_shape
    out_h = (height + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    out_w = (width + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    if out_h < 1 or out_w < 1:
        raise DeployError(f"node {node_name}: a {kernel} window does not fit the {height}x{width} input")
    rows = (np.arange(out_h)[:, None] * stride[0] - padding[0] + np.arange(kernel[0])[None, :] * dilation[0])
    cols = (np.arange(out_w)[:, None] * stride[1] - padding[1] + np.arange(kernel[1])[None, :] * dilation[1])
    inside = ((rows >= 0) & (rows < height))[:, None, :, None] & ((cols >= 0) & (cols < width))[None, :, None, :]
    pixel = rows[:, None, :, None] * width + cols[None, :, None, :]
    return (out_h, out_w), np.where(inside, pixel, -1)  # (out_h, out_w, k_h, k_w)


def _conv_padding(node, kernel: tuple[int, int], dilation: tuple[int, int], node_name: str) -> tuple[int, int]:
    if isinstance(node.padding, str):
        if node.padding == "valid":
            return 0, 0
        if any(d * (k - 1) % 2 for k, d in zip(kernel, dilation)):
            raise DeployError(f"node {node_name}: padding 'same' with an even kernel pads unevenly; "
                              "give the padding as integers")
        return tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
    return _pair(node.padding, "padding", node_name)


def conv2d(node, in_shape: tuple[int, ...], node_name: str) -> LinearMap:
    weight = _finite(node_name, "weight", np.asarray(node.weight, dtype=np.float64))
    if weight.ndim != 4:
        raise DeployError(f"node {node_name}: Conv2d weight must be (out, in / groups, kh, kw), got {weight.shape}")
    out_channels, group_in, kh, kw = weight.shape
    groups = int(node.groups)
    channels = in_shape[0] if in_shape else 0
    if groups < 1 or out_channels % groups or channels != group_in * groups:
        raise DeployError(f"node {node_name}: weight {weight.shape} with {groups} groups does not take "
                          f"{channels} input channels")
    dilation = _pair(node.dilation, "dilation", node_name)
    (out_h, out_w), pixel = _window_map(node_name, in_shape, (kh, kw), _pair(node.stride, "stride", node_name),
                                        _conv_padding(node, (kh, kw), dilation, node_name), dilation)
    plane = in_shape[1] * in_shape[2]
    matrix = np.zeros((out_channels * out_h * out_w, channels * plane))
    out_per_group = out_channels // groups
    taps = pixel.reshape(out_h * out_w, kh * kw)
    inside = taps >= 0
    for oc in range(out_channels):
        first_in = (oc // out_per_group) * group_in
        rows = np.broadcast_to((oc * out_h * out_w + np.arange(out_h * out_w))[:, None], taps.shape)[inside]
        for ic in range(group_in):
            values = np.broadcast_to(weight[oc, ic].reshape(-1), taps.shape)[inside]
            # The taps of one output read distinct pixels: no (row, column) repeats, so += adds each once.
            matrix[rows, (first_in + ic) * plane + taps[inside]] += values
    bias = getattr(node, "bias", None)
    bias = np.zeros(out_channels) if bias is None else _finite(node_name, "bias", np.asarray(bias, np.float64))
    return LinearMap(matrix, np.repeat(bias.reshape(-1), out_h * out_w), (out_channels, out_h, out_w))


def pool2d(node, in_shape: tuple[int, ...], node_name: str, average: bool) -> LinearMap:
    kernel = _pair(node.kernel_size, "kernel_size", node_name)
    stride = _pair(node.stride if node.stride is not None else node.kernel_size, "stride", node_name)
    (out_h, out_w), pixel = _window_map(node_name, in_shape, kernel, stride,
                                        _pair(node.padding, "padding", node_name), (1, 1))
    channels, plane = in_shape[0], in_shape[1] * in_shape[2]
    matrix = np.zeros((channels * out_h * out_w, channels * plane))
    value = 1.0 / (kernel[0] * kernel[1]) if average else 1.0
    taps = pixel.reshape(out_h * out_w, -1)
    for channel in range(channels):
        rows = np.broadcast_to((channel * out_h * out_w + np.arange(out_h * out_w))[:, None], taps.shape)
        inside = taps >= 0
        matrix[rows[inside], channel * plane + taps[inside]] = value
    return LinearMap(matrix, np.zeros(matrix.shape[0]), (channels, out_h, out_w))


def linear_map(node, in_shape: tuple[int, ...], node_name: str) -> LinearMap:
    """The matrix of one synapse node applied to an input of shape ``in_shape``."""
    kind = type(node).__name__
    size = int(np.prod(in_shape))
    if kind in ("Affine", "Linear"):
        weight = _finite(node_name, "weight", np.asarray(node.weight, dtype=np.float64))
        if weight.ndim != 2 or weight.shape[1] != size:
            raise DeployError(f"node {node_name}: weight shape {weight.shape} does not take {size} inputs")
        bias = np.broadcast_to(np.asarray(getattr(node, "bias", 0.0), np.float64), (weight.shape[0],)).copy()
        return LinearMap(weight, _finite(node_name, "bias", bias), (weight.shape[0],))
    if kind == "Scale":
        scale = _finite(node_name, "scale", np.broadcast_to(np.asarray(node.scale, np.float64).reshape(-1),
                                                            (size,)))
        return LinearMap(np.diag(scale), np.zeros(size), tuple(in_shape))
    if kind == "Flatten":
        return LinearMap(np.eye(size), np.zeros(size), (size,))
    if kind == "Conv2d":
        return conv2d(node, in_shape, node_name)
    if kind in ("SumPool2d", "AvgPool2d"):
        return pool2d(node, in_shape, node_name, average=kind == "AvgPool2d")
    raise DeployError(f"node {node_name} is a {kind}, which the target cannot run (synapse nodes: "
                      f"{', '.join(SYNAPSE_TYPES)})")
