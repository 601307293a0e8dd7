#!/usr/bin/env bash
# Runs the original model-compose's own http-client examples, unchanged but for their
# providers' addresses, against local mocks of those providers (tests/originals.rs).
#
#   scripts/compat.sh PATH    PATH: a checkout of hanyeol/model-compose, or its git directory
#
# Their model-compose.yml files are copied to a temporary directory; nothing of the original
# enters this repository.
set -euo pipefail
original=${1:?usage: scripts/compat.sh PATH-TO-hanyeol/model-compose (checkout or git directory)}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if [[ -d $original/examples ]]; then
  (cd "$original" && find examples -name model-compose.yml) | while read -r file; do
    mkdir -p "$out/$(dirname "$file")" && cp "$original/$file" "$out/$file"
  done
elif git --git-dir="$original" rev-parse --verify -q HEAD >/dev/null; then
  git --git-dir="$original" ls-tree -r --name-only HEAD examples | grep '/model-compose.yml$' |
    while read -r file; do
      mkdir -p "$out/$(dirname "$file")" && git --git-dir="$original" show "HEAD:$file" >"$out/$file"
    done
else
  echo "error: $original is neither a checkout with examples/ nor a git directory" >&2
  exit 2
fi
echo "$(find "$out" -name model-compose.yml | wc -l) example files from $original"
MODEL_COMPOSE_ORIGINAL_EXAMPLES=$out/examples cargo test --locked --test originals -- --ignored
