"""The deployment pipeline, one stage a module (``stages``), each taking one artifact (``artifacts``) and
returning the next:

    model -> NIR graph -> float network -> discrete network -> quantized network -> placement -> bundle
          -> spike record -> verdict

``references`` holds the float models the chip is compared with, ``reporting`` the text and HTML
reports, ``interfaces`` the CLI (``snn-deploy``), the demo and the pytest plugin: thin layers over
the stages, and the only code that prints or exits.

    from snn_deploy.deploy import export, load_graph, compile_network, verify

    verdict = verify("model.nir", "model.bundle", data="test.npz")        # or a raster, NIR data, tonic, ...

The pieces behind ``verify``, for a pipeline of one's own: ``load_stimulus`` (data -> a Stimulus of
SpikeEvents in chip steps), ``reference_network`` (the graph read with the bundle's semantics),
``compare_spikes`` (run the chip and the float references on the same input spikes -> a Comparison) and
``judge`` (a Comparison -> the Verdict). ``SpikeEvents`` and ``SpikeRecord`` are the spike containers:
events (sample, step, neuron) with step 1 the first.
"""

from ..targets.record import SpikeEvents, SpikeRecord
from .artifacts.stimulus import DataOptions, DataReport, Stimulus
from .artifacts.tolerances import Tolerances
from .artifacts.verdict import Comparison, Verdict
from .errors import DeployError
from .stages.compile import compile_network
from .stages.export import export, to_nir
from .stages.load import load as load_graph
from .stages.stimulus import load_stimulus
from .stages.verify import compare, compare_spikes, judge, reference_network, verify

__all__ = ["Comparison", "DataOptions", "DataReport", "DeployError", "SpikeEvents", "SpikeRecord", "Stimulus",
           "Tolerances", "Verdict", "compare", "compare_spikes", "compile_network", "export", "judge", "load_graph",
           "load_stimulus", "reference_network", "to_nir", "verify"]
