"""A pytest plugin for your own repository's CI: does my model still deploy?

    def test_model_deploys(snn_verify):
        snn_verify("model.nir", target="loihi2", data="yinyang:test", samples=200, min_agreement=0.99)

``snn_verify`` compiles the NIR file for the target, runs it on a back end (bitsim by default)
over the data set and compares it with the float model, exactly as ``snn-deploy compile`` and
``snn-deploy verify`` do. A relative path is taken from the folder of the calling test file.
Tolerances are keyword arguments (the fields of ``tolerances.Tolerances``) over the model's tolerance
file (see ``tolerances``) over the defaults. On success it returns the Verdict; otherwise the test
fails with a table of each tolerance, measured against allowed, and no library traceback.

Installed with snn-deploy as a ``pytest11`` entry point; ``-p snn_deploy.deploy.testing`` loads it
explicitly. It imports nothing beyond pytest until a test uses the fixture.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def format_failure(verdict, nir_file: str | Path) -> str:
    """What exceeded which tolerance: one row per tolerance and measurement, measured vs allowed."""
    from ..stages.tolerances import checks

    m = verdict.metrics
    rows = checks(m, verdict.tolerances)
    exceeded = [row for row in rows if not row.passed]
    acc = m["accuracy"]
    lines = [f"snn_verify: {nir_file} on {m['target']} via {m['backend']}, {m['dataset']} ({m['samples']} samples): "
             f"{len(exceeded)} of {len(rows)} tolerance checks exceeded",
             f"  accuracy float {acc['float']:.4f}, discrete {acc['discrete']:.4f}, chip {acc['chip']:.4f}; "
             f"agreement {m['agreement']:.4f}",
             f"  {'':9s}{'tolerance':26s}{'measured':>10s}      {'allowed':<10s}  measurement"]
    for row in rows:
        status = "EXCEEDED" if not row.passed else "ok"
        lines.append(f"  {status:9s}{row.tolerance:26s}{row.measured:10.4g}  {'>=' if row.at_least else '<='}  "
                     f"{row.allowed:<10.4g}  {row.subject}")
    return "\n".join(lines)


def run_verification(nir_file: Path, *, target: str, data: str, samples: int | None, backend: str,
                     steps_per_tau: float | None, tolerances: dict):
    """compile + verify, as the CLI does; a bad input or an exceeded tolerance fails the test."""
    from ...targets import backends, description
    from ...targets.backends import BackendUnavailable
    from ..errors import DeployError
    from ..stages.compile import DEFAULT_STEPS_PER_TAU, compile_network
    from ..stages.load import load
    from ..stages.stimulus import load_data
    from ..stages.tolerances import load_tolerances
    from ..stages.verify import verify

    try:
        applied = load_tolerances(nir_file, tolerances)
        net = load(nir_file)
        dataset = load_data(data, samples)
        backends.get(backend)
        bundle = compile_network(net, description.load(target), steps_per_tau or DEFAULT_STEPS_PER_TAU)
        verdict = verify(net, bundle, dataset.features, dataset.labels, backend=backend, dataset=dataset.name,
                         tolerances=applied)
    except (DeployError, BackendUnavailable, description.TargetError, ValueError) as exc:
        pytest.fail(f"snn_verify: {exc}", pytrace=False)
    if not verdict.passed:
        pytest.fail(format_failure(verdict, nir_file), pytrace=False)
    return verdict


@pytest.fixture
def snn_verify(request):
    """``snn_verify(nir_file, *, target="loihi2", data, samples=None, backend="bitsim",
    steps_per_tau=None, **tolerances) -> Verdict``: see the module's docstring."""
    folder = request.path.parent

    def snn_verify(nir_file, *, data: str, target: str = "loihi2", samples: int | None = None,
                   backend: str = "bitsim", steps_per_tau: float | None = None, **tolerances):
        return run_verification(folder / nir_file, target=target, data=data, samples=samples, backend=backend,
                                steps_per_tau=steps_per_tau, tolerances=tolerances)

    return snn_verify
