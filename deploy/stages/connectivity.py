"""NIR synapse nodes as matrices: what each one does to its input, as y = M x + b on flat vectors.

The chip has one kind of synapse: a dense (or sparse) weight matrix between two populations, each
synapse with its own delay. A path of NIR synapse nodes (Affine, Linear, Scale, Conv1d, Conv2d,
SumPool2d, AvgPool2d, Flatten, Delay) between two neuron groups is linear and time-invariant, so it
composes into one such matrix with one delay per synapse: a Delay node (y(t) = x(t - d), NIR >= 1.0.5)
is the identity with delay d per element, and the delays along a path add. A path whose routes
from one source neuron to one target neuron differ in delay has no single per-synapse delay and is
refused, and so is a bias that a Delay follows (it would switch on late; the chip's bias cannot).
Convolutions are expanded:
every output position gets its own copy of the shared kernel (weight sharing is not a feature of
the chip's synapse memory; the compile report counts the synapses this costs).

Every array is C-ordered: a (C, H, W) activation is flattened to index c H W + h W + w, which is
also what NIR's Flatten does. Conv2d and the pools follow PyTorch's conventions, which NIR
adopts: cross-correlation (no kernel flip), zero padding, output size
floor((H + 2 p - d (k - 1) - 1) / s) + 1, AvgPool2d counting the padded zeros. Conv1d, on a
(channels, length) input, is the Conv2d of height 1 with the same expansion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DeployError

SYNAPSE_TYPES = ("Affine", "Linear", "Scale", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d", "Flatten", "Delay")

# Delays along different routes of one synapse are the same delay when they agree to this relative
# tolerance (they are sums of float delays, each route's in its own order).
SAME_DELAY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class LinearMap:
    """y(t) = matrix x(t - delay) + bias on flat vectors, delayed per synapse; ``output_shape`` is y's shape
    before flattening."""

    matrix: np.ndarray  # (output size, input size)
    bias: np.ndarray  # (output size,)
    output_shape: tuple[int, ...]
    delay: np.ndarray | None = None  # (output size, input size) in time units, None: no delay (0 where matrix is 0)


def _route_delays(outer: np.ndarray, outer_delay: np.ndarray, inner: np.ndarray,
                  inner_delay: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(routes, mean delay, delay variance) per synapse of outer @ inner, over the routes k with
    outer[o, k] != 0 and inner[k, i] != 0, each route's delay being outer_delay[o, k] + inner_delay[k, i]:
    sums of matrix products, no (o, k, i) array."""
    a, b = (outer != 0).astype(np.float64), (inner != 0).astype(np.float64)
    da, db = a * outer_delay, b * inner_delay
    routes = a @ b
    total = da @ b + a @ db
    squares = (da * outer_delay) @ b + 2 * da @ db + a @ (db * inner_delay)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(routes > 0, total / routes, 0.0)
        variance = np.where(routes > 0, squares / routes - mean ** 2, 0.0)
    return routes, mean, variance


def _check_same_delay(variance: np.ndarray, mean: np.ndarray, node_name: str) -> None:
    spread = np.sqrt(np.maximum(variance, 0))
    if np.any(spread > SAME_DELAY_TOLERANCE * np.maximum(1.0, np.abs(mean))):
        raise DeployError(f"node {node_name}: routes with different delays join one synapse; the chip gives each "
                          "synapse one delay")


def compose(outer: LinearMap, inner: LinearMap, node_name: str) -> LinearMap:
    """outer after inner: one matrix, bias and per-synapse delay (see the module doc)."""
    matrix, bias = outer.matrix @ inner.matrix, outer.matrix @ inner.bias + outer.bias
    if outer.delay is None and inner.delay is None:
        return LinearMap(matrix, bias, outer.output_shape)
    outer_delay = np.zeros(outer.matrix.shape) if outer.delay is None else outer.delay
    inner_delay = np.zeros(inner.matrix.shape) if inner.delay is None else inner.delay
    if np.any((outer.matrix != 0) & (outer_delay != 0) & (inner.bias != 0)[None, :]):
        raise DeployError(f"node {node_name} delays a bias: its onset would come late, which the chip's bias "
                          "cannot do; put the Delay before the bias's node")
    routes, mean, variance = _route_delays(outer.matrix, outer_delay, inner.matrix, inner_delay)
    _check_same_delay(variance, mean, node_name)
    return LinearMap(matrix, bias, outer.output_shape, np.where(matrix != 0, mean, 0.0))


def add(first: LinearMap, second: LinearMap, node_name: str) -> LinearMap:
    """The sum of two paths from one source: a synapse both use must have one delay in both."""
    matrix, bias = first.matrix + second.matrix, first.bias + second.bias
    if first.delay is None and second.delay is None:
        return LinearMap(matrix, bias, second.output_shape)
    delays = [np.zeros(m.matrix.shape) if m.delay is None else m.delay for m in (first, second)]
    both = (first.matrix != 0) & (second.matrix != 0)
    if np.any(both & ~np.isclose(delays[0], delays[1], rtol=SAME_DELAY_TOLERANCE, atol=0)):
        raise DeployError(f"node {node_name}: paths with different delays join one synapse; the chip gives each "
                          "synapse one delay")
    delay = np.where(first.matrix != 0, delays[0], delays[1])
    return LinearMap(matrix, bias, second.output_shape, np.where(matrix != 0, delay, 0.0))


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


def _conv_padding(padding, kernel: tuple[int, int], dilation: tuple[int, int], node_name: str) -> tuple[int, int]:
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0
        if any(d * (k - 1) % 2 for k, d in zip(kernel, dilation)):
            raise DeployError(f"node {node_name}: padding 'same' with an even kernel pads unevenly; "
                              "give the padding as integers")
        return tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
    return _pair(padding, "padding", node_name)


def _convolution(node, weight: np.ndarray, in_shape: tuple[int, ...], stride: tuple[int, int],
                 padding, dilation: tuple[int, int], node_name: str) -> LinearMap:
    """The expanded matrix of the (grouped, strided, dilated, padded) 2-D convolution ``node`` of a (C, H, W)
    input; ``weight`` is (out, in / groups, kh, kw), ``padding`` a pair or "same" / "valid"."""
    out_channels, group_in, kh, kw = weight.shape
    groups = int(node.groups)
    channels = in_shape[0] if in_shape else 0
    if groups < 1 or out_channels % groups or channels != group_in * groups:
        raise DeployError(f"node {node_name}: weight {weight.shape} with {groups} groups does not take "
                          f"{channels} input channels")
    (out_h, out_w), pixel = _window_map(node_name, in_shape, (kh, kw), stride,
                                        _conv_padding(padding, (kh, kw), dilation, node_name), dilation)
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


def conv2d(node, in_shape: tuple[int, ...], node_name: str) -> LinearMap:
    weight = _finite(node_name, "weight", np.asarray(node.weight, dtype=np.float64))
    if weight.ndim != 4:
        raise DeployError(f"node {node_name}: Conv2d weight must be (out, in / groups, kh, kw), got {weight.shape}")
    return _convolution(node, weight, in_shape, _pair(node.stride, "stride", node_name), node.padding,
                        _pair(node.dilation, "dilation", node_name), node_name)


def _single(value, name: str, node_name: str) -> int:
    array = np.atleast_1d(np.asarray(value)).astype(np.int64).reshape(-1)
    if array.size != 1:
        raise DeployError(f"node {node_name}: {name} must be one integer, got {value!r}")
    return int(array[0])


def conv1d(node, in_shape: tuple[int, ...], node_name: str) -> LinearMap:
    """A Conv1d on a (channels, length) input: the Conv2d of height 1 (PyTorch's and NIR's Conv1d)."""
    weight = _finite(node_name, "weight", np.asarray(node.weight, dtype=np.float64))
    if weight.ndim != 3:
        raise DeployError(f"node {node_name}: Conv1d weight must be (out, in / groups, k), got {weight.shape}")
    if len(in_shape) != 2:
        raise DeployError(f"node {node_name}: expects a (channels, length) input, got shape {in_shape}")
    padding = node.padding if isinstance(node.padding, str) else (0, _single(node.padding, "padding", node_name))
    mapped = _convolution(node, weight[:, :, None, :], (in_shape[0], 1, in_shape[1]),
                          (1, _single(node.stride, "stride", node_name)), padding,
                          (1, _single(node.dilation, "dilation", node_name)), node_name)
    channels, _, length = mapped.output_shape
    return LinearMap(mapped.matrix, mapped.bias, (channels, length))


def delay_map(node, in_shape: tuple[int, ...], node_name: str) -> LinearMap:
    """A Delay node: the identity, element i delayed by delay[i] time units (NIR: y(t) = x(t - delay))."""
    size = int(np.prod(in_shape))
    delay = _finite(node_name, "delay", np.asarray(node.delay, np.float64).reshape(-1))
    if delay.size == 1:
        delay = np.full(size, float(delay[0]))
    if delay.shape != (size,):
        raise DeployError(f"node {node_name}: delay has {delay.size} values for {size} inputs")
    if np.any(delay < 0):
        raise DeployError(f"node {node_name}: delay {float(delay.min()):g} is negative; a delay cannot look ahead")
    return LinearMap(np.eye(size), np.zeros(size), tuple(in_shape), np.diag(delay))


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
            raise DeployError(f"node {node_name}: weight shape {weight.shape} does not take an input of shape "
                              f"{tuple(int(n) for n in in_shape)} ({size} values)")
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
    if kind == "Conv1d":
        return conv1d(node, in_shape, node_name)
    if kind == "Delay":
        return delay_map(node, in_shape, node_name)
    if kind in ("SumPool2d", "AvgPool2d"):
        return pool2d(node, in_shape, node_name, average=kind == "AvgPool2d")
    raise DeployError(f"node {node_name} is a {kind}, which the target cannot run (synapse nodes: "
                      f"{', '.join(SYNAPSE_TYPES)})")
