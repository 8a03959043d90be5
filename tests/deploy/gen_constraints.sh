#!/usr/bin/env bash
# Regenerate constraints.txt (the image's pinned dependencies) from the project venv:
# the runtime closure of pyproject.toml's [project].dependencies, at the versions installed in
# .venv, without the test/dev extras. The pip/setuptools/wheel pins are kept from the old file.
#
# usage: tests/deploy/gen_constraints.sh        env: PYTHON (default .venv/bin/python)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

"$PY" -m pip freeze --exclude-editable | grep -viE '^oci[-_]anthropic[-_]gateway' > "$TMP/venv.txt"
"$PY" -m venv "$TMP/v"
"$TMP/v/bin/pip" install -q -c "$TMP/venv.txt" "$ROOT"
{
  sed -n '1,/^# Runtime closure:$/p' "$ROOT/constraints.txt"
  "$TMP/v/bin/pip" freeze --exclude oci-anthropic-gateway --exclude pip --exclude setuptools \
    --exclude wheel
} > "$TMP/constraints.txt"
if cmp -s "$TMP/constraints.txt" "$ROOT/constraints.txt"; then
  echo "constraints.txt is up to date"
else
  diff -u "$ROOT/constraints.txt" "$TMP/constraints.txt" || true
  cp "$TMP/constraints.txt" "$ROOT/constraints.txt"
  echo "constraints.txt updated"
fi
