"""The step schedule on its own, with a relay arithmetic (a neuron spikes on a step iff its input is
positive): every Dense block delays by one step, and recurrent loops run in step order, not in the
order the populations are listed."""

import numpy as np

from snn_deploy.targets import schedule
from snn_deploy.targets.bundle import DenseConnection, InputLayer, IntNetwork, LifPopulation
from snn_deploy.targets.schedule import Arithmetic, NeuronStep

RELAY = Arithmetic(init_state=lambda pop, num_samples: None,
                   neuron_step=lambda pop, state, activation: NeuronStep(None, activation > 0),
                   synapse=lambda conn, spikes: spikes.astype(np.float64) @ conn.weights.T.astype(np.float64),
                   activation_dtype=np.float64, trace=lambda state: {})


def _loop(order: tuple[str, str]) -> IntNetwork:
    """input -> a -> b -> a: two neurons in a recurrent loop, listed in ``order``."""
    pops = {name: LifPopulation(name, 1, du=0, dv=0, vth=0, bias_mant=0) for name in order}
    one = np.ones((1, 1), np.int32)
    return IntNetwork(InputLayer("input", 1), tuple(pops[name] for name in order),
                      (DenseConnection("in_a", "input", "a", one), DenseConnection("a_b", "a", "b", one),
                       DenseConnection("b_a", "b", "a", one)), "b")


def _spike_steps(network: IntNetwork, num_steps: int) -> dict[str, list[int]]:
    raster = np.zeros((1, num_steps, 1), bool)
    raster[0, 0, 0] = True  # one input spike, in step 1
    result = schedule.run_batch(network, RELAY, raster, num_steps)
    return {name: sorted(int(step) for step in steps) for name, (_, steps, _) in result.spikes.items()}


def test_each_dense_block_delays_by_one_step_and_the_loop_alternates():
    assert schedule.DENSE_DELAY_STEPS == 1
    # The input spike of step 1 reaches a in step 2; a's spike reaches b in step 3, b's reaches a in step 4, ...
    assert _spike_steps(_loop(("a", "b")), 8) == {"a": [2, 4, 6, 8], "b": [3, 5, 7]}


def test_the_listed_order_of_populations_does_not_change_a_recurrent_run():
    # Every neuron integrates what the Dense blocks accumulated in the previous step, so b listed first
    # does not see a's spikes of the same step.
    assert _spike_steps(_loop(("b", "a")), 8) == _spike_steps(_loop(("a", "b")), 8)
