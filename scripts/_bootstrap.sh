# Sourced by scripts/demo and scripts/test: makes .venv and installs the project into it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "installing dependencies into .venv (first run only)..."
  # The local CPU build first: with torch 2.13.0 present, the project's torch>=2.3 bound is met
  # and pip never reaches for a CUDA build.
  # (sed drops the local index's notes about packages it does not carry.)
  .venv/bin/pip install -q "torch==2.13.0" 2>&1 | sed '/^WARNING: Location/d'
  .venv/bin/pip install -q -e ".[dev]" 2>&1 | sed '/^WARNING: Location/d'
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
