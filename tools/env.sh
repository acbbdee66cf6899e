# Shared by tools/demo and tools/test: create the environments when missing. Source it; don't run it.
# The main environment is .venv (Python >= 3.10; python3 or $SNN_DEPLOY_PYTHON), with a CPU torch
# installed first so that pip does not pull a multi-GB CUDA build.

SNN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SNN_VENV="$SNN_ROOT/.venv"
# torch 2.13.0 is the CPU wheel served locally on the project's machines; override elsewhere.
SNN_TORCH_SPEC="${SNN_DEPLOY_TORCH_SPEC:-torch==2.13.0}"
# The simulators that tests/test_interop.py checks NIR graphs against (pinned: their exporters' quirks are asserted).
SNN_INTEROP_SPEC="snntorch==1.0.0 nirtorch==2.6 norse==1.1.0"

_snn_stamp() {
  # Rebuild the environment when the project's dependencies change.
  { cat "$SNN_ROOT/pyproject.toml"; echo "$SNN_TORCH_SPEC"; echo "$SNN_INTEROP_SPEC"; } | sha256sum | cut -c1-16
}

ensure_main_env() {
  local stamp_file="$SNN_VENV/.snn-deploy-ready" stamp
  stamp="$(_snn_stamp)"
  if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
    return 0
  fi
  local python="${SNN_DEPLOY_PYTHON:-python3}"
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "snn-deploy set-up: $python is missing or older than Python 3.10; set SNN_DEPLOY_PYTHON to a Python >= 3.10" >&2
    return 2
  fi
  echo "snn-deploy set-up: creating $SNN_VENV (one time; about a minute)" >&2
  local start=$SECONDS log
  rm -rf "$SNN_VENV"
  "$python" -m venv "$SNN_VENV"
  log="$SNN_VENV/install.log"
  # pip and the build backend are chatty; their output goes to a log, shown only if a step fails.
  if ! { "$SNN_VENV/bin/python" -m pip install --upgrade pip &&
         "$SNN_VENV/bin/python" -m pip install "$SNN_TORCH_SPEC" &&
         "$SNN_VENV/bin/python" -m pip install -e "$SNN_ROOT[torch,report,onnx,dev,events,compiled,distributed]" &&
         # --no-deps: their declared dependencies would replace the CPU torch and pull torchvision, neither needed.
         "$SNN_VENV/bin/python" -m pip install --no-deps $SNN_INTEROP_SPEC; } > "$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "snn-deploy set-up: installing into $SNN_VENV failed; the full log is $log" >&2
    return 1
  fi
  echo "$stamp" > "$stamp_file"
  echo "snn-deploy set-up: main environment ready in $((SECONDS - start)) s" >&2
}

ensure_lava_env() {
  "$SNN_ROOT/tools/setup-lava"
}
