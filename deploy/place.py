"""place: assign each population's neurons to cores within the target's per-core limits.

Neurons of one population fill consecutive cores, in network order. Only the neuron count per
core is budgeted so far; synapse memory, fan-in/fan-out and multi-chip placement come with the
full placement stage.
"""

from __future__ import annotations

from ..targets.bundle import CoreAssignment, IntNetwork, Placement
from ..targets.description import Target
from .errors import DeployError


def place(network: IntNetwork, target: Target) -> Placement:
    per_core = int(target.value("core", "max_neurons"))
    cores_available = int(target.value("chip", "neuro_cores"))
    assignments, core = [], 0
    for pop in network.populations:
        for start in range(0, pop.size, per_core):
            assignments.append(CoreAssignment(core=core, population=pop.name, start=start,
                                              stop=min(start + per_core, pop.size)))
            core += 1
    if core > cores_available:
        total = sum(p.size for p in network.populations)
        raise DeployError(f"the network needs {core} cores at {per_core} neurons per core ({total} neurons); "
                          f"{target.name} has {cores_available} cores per chip")
    return Placement(target=target.name, cores=tuple(assignments))
