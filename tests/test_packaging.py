"""One import root, and targets/ importable with numpy and nir alone (the Lava worker's needs)."""

import subprocess
import sys


def _python(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)


def test_no_bare_top_level_packages(tmp_path):
    # From a neutral folder: a user's repo has its own `models`, which must not collide with ours.
    result = _python("import importlib.util as u; print([n for n in ('models', 'targets', 'deploy') "
                     "if u.find_spec(n)])", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_targets_import_without_torch(tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises ImportError
            "import snn_deploy.targets.bitsim, snn_deploy.targets.bundle, snn_deploy.targets.record\n"
            "import snn_deploy.targets.schedule, snn_deploy.targets.fixed_point, snn_deploy.targets.backends\n"
            "import snn_deploy.targets.description\n"
            "print(sorted(m for m, mod in sys.modules.items() if mod is not None\n"
            "             and m.split('.')[0] in ('torch', 'tqdm', 'sklearn')))")
    result = _python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
