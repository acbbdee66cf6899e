"""Networks for the differential tests (bitsim against Lava, the compiled engine against the reference):
hypothesis strategies for random networks spanning sign modes, weight bits, exponents of both signs, graded
spikes, recurrence, fire-once and both resets, and constructed cases that wrap, saturate and cross the
sample boundary."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from hypothesis import strategies as st

from snn_deploy.targets import description
from snn_deploy.targets import fixed_point as fx
from snn_deploy.targets.bundle import Bundle, DenseConnection, InputLayer, IntNetwork, LifPopulation, Placement, Timing
from snn_deploy.targets.record import SpikeEvents

from helpers import target_fields

LOIHI2 = description.load("loihi2").widths  # Lava's widths: the lava back end runs only these
NUM_STEPS = 32
NUM_SAMPLES = 3  # several samples per case: the per-sample reset is part of what is checked
SIGN_MODE_NAMES = {fx.EXCITATORY: "excitatory", fx.INHIBITORY: "inhibitory", fx.MIXED: "mixed"}


@dataclass(frozen=True)
class Case:
    """One network and its input spikes; ``label`` says what it exercises."""

    bundle: Bundle
    inputs: SpikeEvents
    label: str


def make_bundle(num_inputs: int, populations: list[LifPopulation], connections: list[DenseConnection],
                num_steps: int = NUM_STEPS) -> Bundle:
    network = IntNetwork(input=InputLayer("input", num_inputs), populations=tuple(populations),
                         connections=tuple(connections), output=populations[-1].name)
    return Bundle(**target_fields("loihi2"), network=network, placement=Placement("loihi2", ()),
                  timing=Timing(dt=1.0, num_steps=num_steps))


def random_inputs(rng: np.random.Generator, num_inputs: int, density: float, num_steps: int = NUM_STEPS) -> SpikeEvents:
    return SpikeEvents.from_raster(rng.random((NUM_SAMPLES, num_steps, num_inputs)) < density)


# --- random networks ----------------------------------------------------------------------------

# Each entry forces one property on one network of the list, so every drawn list covers all of them.
FORCED = (
    {"sign_mode": fx.EXCITATORY}, {"sign_mode": fx.INHIBITORY}, {"sign_mode": fx.MIXED},
    {"num_weight_bits": 1}, {"num_weight_bits": 8},
    {"weight_exp_sign": -1}, {"weight_exp_sign": 1},
    {"graded": False}, {"graded": True},
    {"bias_exp_sign": -1}, {"bias_exp_sign": 1},
    {"layers": 1}, {"layers": 4},
    {"recurrent": True}, {"fire_once": True}, {"reset": fx.RESET_SUBTRACT, "fire_once": False},
)
UNFORCED = 4
# Networks with delayed synapses run longer: a spike delayed by Loihi 2's longest delay (63 steps) still
# arrives within the sample.
DELAY_STEPS = 80


@st.composite
def networks(draw, sign_mode=None, num_weight_bits=None, weight_exp_sign=None, graded=None, bias_exp_sign=None,
             layers=None, recurrent=None, fire_once=None, reset=None, max_delay=0) -> Case:
    """A random 1-4 layer network with random inputs; a forced property holds for all its layers.

    ``max_delay`` > 0: every connection has per-synapse delays drawn from 0 .. max_delay, the first synapse
    delayed by max_delay and the last by 0 (binary spikes: Lava's DelayDense takes no graded ones), and the
    run has DELAY_STEPS steps.

    Hypothesis draws the structure and the parameters; the bulk arrays (weights, input spikes) come
    from a numpy generator seeded by a drawn seed, to stay within hypothesis's data budget.
    """
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    num_layers = layers or draw(st.integers(1, 4))
    sizes = [draw(st.integers(2, 5))] + [draw(st.integers(1, 6)) for _ in range(num_layers)]
    populations, connections, labels = [], [], []
    for layer in range(num_layers):
        populations.append(draw(lif_populations(f"layer{layer}", sizes[layer + 1], bias_exp_sign, fire_once, reset)))
        source = "input" if layer == 0 else f"layer{layer - 1}"
        conn = draw(dense_connections(rng, f"dense{layer}", source, f"layer{layer}", (sizes[layer + 1], sizes[layer]),
                                      sign_mode, num_weight_bits, weight_exp_sign, False if max_delay else graded))
        connections.append(conn)
    if draw(st.booleans()) if recurrent is None else recurrent:
        layer = draw(st.integers(0, num_layers - 1))
        connections.append(draw(dense_connections(rng, "recurrent", f"layer{layer}", f"layer{layer}",
                                                  (sizes[layer + 1],) * 2, sign_mode, num_weight_bits,
                                                  weight_exp_sign, False if max_delay else graded)))
    if max_delay:
        connections = [replace(conn, delays=random_delays(rng, conn.weights, max_delay)) for conn in connections]
    for conn in connections:
        labels.append(f"{conn.name}: {conn.source}->{conn.target} {SIGN_MODE_NAMES[fx.sign_mode(conn.weights)]} "
                      f"nwb={conn.num_weight_bits} exp={conn.weight_exp} msg_bits={conn.num_message_bits} "
                      f"max_delay={conn.max_delay}")
    labels += [f"{pop.name}: bias_exp={pop.bias_exp} fire_once={pop.fire_once} reset={pop.reset}"
               for pop in populations]
    density = draw(st.sampled_from([0.05, 0.2, 0.5]))
    steps = DELAY_STEPS if max_delay else NUM_STEPS
    return Case(make_bundle(sizes[0], populations, connections, steps), random_inputs(rng, sizes[0], density, steps),
                "; ".join(labels))


# The chip form of each readout (LifPopulation.readout, vth at the 17-bit maximum): LI holds one step's input in
# u (du = 4095) and leaks v; CubaLI leaks both; I holds one step's input and never leaks v (dv = 0).
READOUT_DECAYS = {"LI": (st.just(4095), st.integers(1, 4095)), "CubaLI": (st.integers(0, 4095), st.integers(1, 4095)),
                  "I": (st.just(4095), st.just(0))}


@st.composite
def readout_networks(draw, dynamics: str) -> Case:
    """A random spiking network (``networks``) whose output feeds a readout of ``dynamics`` (READOUT_DECAYS), which
    becomes the output; its weights are drawn as any block's, so it may well fire: bitsim and Lava must agree on
    that too."""
    base = draw(networks(fire_once=False))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    net = base.bundle.network
    last = net.populations[-1]
    size = draw(st.integers(1, 5))
    du, dv = READOUT_DECAYS[dynamics]
    readout = LifPopulation("readout", size, du=draw(du), dv=draw(dv), vth=LOIHI2.threshold_max,
                            bias_mant=draw(st.one_of(st.just(0), st.integers(-300, 300))),
                            bias_exp=draw(st.integers(0, 7)), readout=True)
    conn = draw(dense_connections(rng, "to_readout", last.name, "readout", (size, last.size)))
    bundle = make_bundle(net.input.size, [*net.populations, readout], [*net.connections, conn])
    return Case(bundle, base.inputs, f"{dynamics} readout (du={readout.du[0]} dv={readout.dv[0]}) after {base.label}")


def random_delays(rng: np.random.Generator, weights: np.ndarray, max_delay: int) -> np.ndarray:
    """Per-synapse delays in 0 .. max_delay, the first nonzero synapse's max_delay and the last's 0 (where the
    block has two)."""
    delays = rng.integers(0, max_delay + 1, size=weights.shape)
    live = np.flatnonzero(weights)
    if live.size:
        delays.flat[live[0]] = max_delay
    if live.size >= 2:
        delays.flat[live[-1]] = 0
    return delays


def signed_exponent(forced_sign, low: int, high: int):
    """An exponent in [low, high]; with forced_sign -1 or 1 only negative or only positive ones."""
    if forced_sign is None:
        return st.integers(low, high)
    return st.integers(low, -1) if forced_sign < 0 else st.integers(1, high)


@st.composite
def lif_populations(draw, name: str, size: int, bias_exp_sign=None, fire_once=None, reset=None) -> LifPopulation:
    def per_neuron(values):
        # Either one value for the population or one per neuron (Lava's LIF has only the former).
        return draw(st.one_of(values, st.lists(values, min_size=size, max_size=size)))

    return LifPopulation(
        name, size,
        du=per_neuron(st.one_of(st.integers(0, 4095), st.sampled_from([0, 4095]))),
        dv=per_neuron(st.one_of(st.integers(0, 4095), st.sampled_from([0, 4095]))),
        vth=per_neuron(st.one_of(st.integers(0, 2000), st.integers(0, 2**17 - 1))),
        bias_mant=per_neuron(st.one_of(st.just(0), st.integers(-300, 300), st.integers(-4096, 4095))),
        bias_exp=draw(signed_exponent(bias_exp_sign, -4, 7)),
        fire_once=draw(st.booleans()) if fire_once is None else fire_once,
        reset=reset or draw(st.sampled_from(fx.RESET_MODES)))


@st.composite
def dense_connections(draw, rng: np.random.Generator, name: str, source: str, target: str, shape: tuple,
                      sign_mode=None, num_weight_bits=None, weight_exp_sign=None, graded=None) -> DenseConnection:
    mode = sign_mode or draw(st.sampled_from(list(SIGN_MODE_NAMES)))
    bits = num_weight_bits or draw(st.integers(1, 8))
    raw = rng.integers(-256, 256, size=shape)
    if mode == fx.EXCITATORY:
        raw = np.minimum(np.abs(raw), 255)
    elif mode == fx.INHIBITORY:
        raw = -np.abs(raw)
    elif raw.size >= 2:
        raw.flat[0], raw.flat[-1] = 255, -256  # both signs, and the extremes
    is_graded = draw(st.booleans()) if graded is None else graded
    return DenseConnection(name, source, target, fx.stored_weights(LOIHI2, raw, bits),
                           weight_exp=draw(signed_exponent(weight_exp_sign, LOIHI2.weight_exp_min,
                                                           LOIHI2.weight_exp_max)),
                           num_weight_bits=bits,
                           num_message_bits=draw(st.integers(1, 8)) if is_graded else 0)


# --- constructed edge cases ---------------------------------------------------------------------

def always_on(num_inputs: int) -> SpikeEvents:
    return SpikeEvents.from_raster(np.ones((NUM_SAMPLES, NUM_STEPS, num_inputs), bool))


def current_wrap_cases() -> list[Case]:
    """u grows by 3 * (255 << 7) << 6 = 6.3e6 a step (du = 0): it passes +-2**23 on step 3."""
    cases = []
    for sign, name in ((1, "wraps_up"), (-1, "wraps_down")):
        pop = LifPopulation(name, 2, du=0, dv=4095, vth=2**17 - 1, bias_mant=0)
        dense = DenseConnection("dense", "input", name, np.full((2, 3), 255 * sign), weight_exp=7)
        cases.append(Case(make_bundle(3, [pop], [dense]), always_on(3), name))
    return cases


def voltage_saturation_cases() -> list[Case]:
    """Bias +-4095 << 7 per step, no leak: v reaches the 24-bit limit after 16-17 steps.

    Upwards v saturates at 2**23 - 1, which is above vth << 6, so it fires and restarts (from 0, or
    from 63 when the threshold is subtracted); downwards it stays saturated. The fire-once
    population saturates once, then holds v = 0 (not counted).
    """
    populations = [LifPopulation("saturates_up", 2, du=0, dv=0, vth=2**17 - 1, bias_mant=4095, bias_exp=7),
                   LifPopulation("saturates_up_subtracting", 2, du=0, dv=0, vth=2**17 - 1, bias_mant=4095,
                                 bias_exp=7, reset=fx.RESET_SUBTRACT),
                   LifPopulation("saturates_down", 2, du=0, dv=0, vth=10, bias_mant=-4096, bias_exp=7),
                   LifPopulation("saturates_once", 2, du=0, dv=0, vth=2**17 - 1, bias_mant=4095, bias_exp=7,
                                 fire_once=True)]
    return [Case(make_bundle(1, [pop], []), always_on(1), pop.name) for pop in populations]


def sample_boundary_case() -> Case:
    """Neurons that fire on every step, with input on every step, feeding a recurrent fire-once layer.

    Their spikes of each sample's last step reach the Dense blocks, which would deliver them on the
    next sample's first step: the per-sample reset must drop exactly those.
    """
    busy = LifPopulation("busy", 3, du=4095, dv=4095, vth=0, bias_mant=100)
    ttfs = LifPopulation("ttfs", 2, du=3000, dv=3000, vth=50, bias_mant=0, fire_once=True)
    connections = [DenseConnection("in_busy", "input", "busy", np.full((3, 2), 40)),
                   DenseConnection("busy_ttfs", "busy", "ttfs", np.full((2, 3), 30), weight_exp=-1),
                   DenseConnection("ttfs_ttfs", "ttfs", "ttfs", np.array([[0, -100], [-100, 0]]))]
    return Case(make_bundle(2, [busy, ttfs], connections), always_on(2), "sample boundary")
