"""The deployment pipeline, one stage a module (``stages``), each taking one artifact (``artifacts``) and
returning the next:

    model -> NIR graph -> float network -> discrete network -> quantized network -> placement -> bundle
          -> spike record -> verdict

``references`` holds the float models the chip is compared with, ``reporting`` the text and HTML
reports, ``interfaces`` the CLI (``snn-deploy``), the demo and the pytest plugin: thin layers over
the stages, and the only code that prints or exits.

    from snn_deploy.deploy import export, load_graph, compile_network, verify
"""

from .artifacts.tolerances import Tolerances
from .artifacts.verdict import Verdict
from .errors import DeployError
from .stages.compile import compile_network
from .stages.export import export, to_nir
from .stages.load import load as load_graph
from .stages.verify import compare, judge, verify

__all__ = ["DeployError", "Tolerances", "Verdict", "compare", "compile_network", "export", "judge", "load_graph",
           "to_nir", "verify"]
