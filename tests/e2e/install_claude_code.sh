#!/usr/bin/env bash
# Install the Claude Code CLI (npm package @anthropic-ai/claude-code) into a local folder for the
# end-to-end tests. Idempotent: does nothing when the pinned version is already there.
#
#   tests/e2e/install_claude_code.sh [PREFIX]     # default PREFIX: <repo>/.cache/claude-code
#
# Prints the path of the `claude` executable on its last line. Needs node + npm and access to the
# npm registry (nothing else: the package ships a native binary per platform as an optional
# dependency, copied into place by its postinstall script).
#
# Pinned to 2.1.197, the version whose traffic the reference describes
# (docs: anthropic-messages.md §8); its engines field accepts Node >= 18 (Debian 12 ships 18).
set -euo pipefail

VERSION="${CLAUDE_CODE_VERSION:-2.1.197}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PREFIX="${1:-$ROOT/.cache/claude-code}"
BIN="$PREFIX/node_modules/.bin/claude"

installed_version() {
  [ -x "$BIN" ] || return 1
  "$BIN" --version 2>/dev/null | awk '{print $1}'
}

if [ "$(installed_version || true)" != "$VERSION" ]; then
  command -v npm >/dev/null || { echo "npm is not installed" >&2; exit 2; }
  mkdir -p "$PREFIX"
  # --ignore-scripts=false: the postinstall script puts the native binary in place
  npm install --prefix "$PREFIX" --no-audit --no-fund --save-exact --ignore-scripts=false \
    --loglevel=error "@anthropic-ai/claude-code@$VERSION" >&2
  got="$(installed_version || true)"
  if [ "$got" != "$VERSION" ]; then
    echo "claude-code install failed: expected $VERSION, found '${got:-nothing}' at $BIN" >&2
    exit 1
  fi
fi
echo "$BIN"
