"""The deployment pipeline: model -> NIR graph -> quantized network -> placement -> bundle -> spike
record -> verdict. Each stage is one function; the CLI (``snn-deploy``) is a thin layer over them.

    from snn_deploy.deploy import export, load_graph, compile_network, verify
"""

from .compile import compile_network
from .errors import DeployError
from .export import export, to_nir
from .network import load as load_graph
from .verify import Tolerances, Verdict, verify

__all__ = ["DeployError", "Tolerances", "Verdict", "compile_network", "export", "load_graph", "to_nir", "verify"]
