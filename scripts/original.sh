#!/usr/bin/env bash
# Installs the original model-compose (0.4.120, from PyPI) into a private virtual environment,
# .tools/original, for `make bench-original`; does nothing when it is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.tools/original
version=0.4.120
if [[ -x $venv/bin/model-compose ]] && "$venv/bin/pip" show model-compose 2>/dev/null | grep -x "Version: $version" >/dev/null; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "model-compose==$version"
echo "installed model-compose $version in $venv"
