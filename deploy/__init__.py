"""The deployment pipeline: model -> NIR graph -> quantized network -> placement -> bundle -> spike
record -> verdict. Each stage is one function; the CLI (``snn-deploy``) is a thin layer over them.

    from snn_deploy.deploy import export, load_graph, compile_network, verify
"""

from .compile import compile_network
from .errors import DeployError
from .export import export, to_nir
from .network import load as load_graph
from .tolerances import Tolerances
from .verify import Verdict, compare, judge, verify

__all__ = ["DeployError", "Tolerances", "Verdict", "compare", "compile_network", "export", "judge", "load_graph",
           "to_nir", "verify"]
