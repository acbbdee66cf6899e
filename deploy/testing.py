"""The pytest plugin's documented import path (the ``pytest11`` entry point and ``-p snn_deploy.deploy.testing``):
the fixture lives in ``interfaces.pytest_plugin``."""

from .interfaces.pytest_plugin import snn_verify

__all__ = ["snn_verify"]
