"""A pytest plugin for your own repository's CI: does my model still deploy?

    def test_model_deploys(snn_verify):
        snn_verify("model.nir", target="loihi2", data="yinyang:test", samples=200, min_agreement=0.99)

``snn_verify`` compiles the NIR file for the target, runs it on a back end (bitsim by default)
over the data (a data set split, or seeded random spike trains "random:rate=0.05,seed=0") and
compares it with the float model, through the same stages as ``snn-deploy compile`` and
``snn-deploy verify``. A relative path is taken from the folder of the calling test file.
A graph from another tool states its semantics as keyword arguments named as the command line's
options: ``time_unit``, ``fire_once`` (False for ``--multi-spike``), ``reset``, ``decoding``,
``duration``, ``spike``, ``integration``; the time step as ``steps_per_tau`` or ``dt``, and
``split_weights``. Tolerances are the other keyword arguments (the fields of
``tolerances.Tolerances``) over the model's tolerance file (see ``tolerances``) over the defaults.
On success it returns the Verdict; otherwise the test fails with one line naming the bad input, or
a table of each tolerance, measured against allowed, and no library traceback.

Installed with snn-deploy as a ``pytest11`` entry point; ``-p snn_deploy.deploy.testing`` loads it
explicitly. It imports nothing beyond pytest until a test uses the fixture.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def verdict_of(nir_file: Path, *, target: str, data: str, samples: int | None, backend: str,
               steps_per_tau: float | None, dt: float | None, split_weights: bool, semantics: dict,
               tolerances: dict):
    """compile + verify through the stages, as the CLI's compile and verify run them."""
    from ...targets import backends, description
    from ..artifacts.semantics import semantic_overrides
    from ..errors import DeployError
    from ..stages.compile import DEFAULT_STEPS_PER_TAU, compile_network
    from ..stages.load import load
    from ..stages.stimulus import load_stimulus
    from ..stages.tolerances import load_tolerances
    from ..stages.verify import compare_spikes, judge

    applied = load_tolerances(nir_file, tolerances)
    net = load(nir_file, semantic_overrides(**semantics))
    try:
        backends.get(backend)
    except ValueError as exc:
        raise DeployError(str(exc)) from None
    bundle = compile_network(net, description.load(target), steps_per_tau or DEFAULT_STEPS_PER_TAU, dt=dt,
                             split_weights=split_weights)
    stimulus = load_stimulus(data, samples, bundle, references=True)
    comparison = compare_spikes(net, bundle, stimulus.inputs, labels=stimulus.labels, times_in=stimulus.times,
                                backend=backend)
    return judge(comparison, net, bundle, dataset=stimulus.name, tolerances=applied)


def run_verification(nir_file: Path, **options):
    """``verdict_of``; a bad input or an exceeded tolerance fails the test (once: outside any except block,
    so pytest shows no chained exception)."""
    from ..errors import BAD_INPUT_ERRORS
    from ..reporting.text import format_failure

    try:
        verdict = verdict_of(nir_file, **options)
    except BAD_INPUT_ERRORS as exc:
        failure = f"snn_verify: {exc}"
    else:
        failure = None if verdict.passed else format_failure(verdict, nir_file)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    return verdict


@pytest.fixture
def snn_verify(request):
    """``snn_verify(nir_file, *, data, target="loihi2", samples=None, backend="bitsim", steps_per_tau=None,
    dt=None, split_weights=False, **semantics_and_tolerances) -> Verdict``: see the module's docstring."""
    folder = request.path.parent

    def snn_verify(nir_file, *, data: str, target: str = "loihi2", samples: int | None = None,
                   backend: str = "bitsim", steps_per_tau: float | None = None, dt: float | None = None,
                   split_weights: bool = False, **options):
        import inspect

        from ..artifacts.semantics import semantic_overrides

        semantic_names = inspect.signature(semantic_overrides).parameters
        semantics = {name: options.pop(name) for name in list(options) if name in semantic_names}
        return run_verification(folder / nir_file, target=target, data=data, samples=samples, backend=backend,
                                steps_per_tau=steps_per_tau, dt=dt, split_weights=split_weights,
                                semantics=semantics, tolerances=options)

    return snn_verify
