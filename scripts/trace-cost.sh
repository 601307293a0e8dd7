#!/usr/bin/env bash
# `make bench-traces` (and `make bench`): what exporting traces adds to a streamed token
# (issue 29: at most 5 %). The same binary serves the seed config and the seed with a `tracer:`
# (benches/configs/seed-traced.yml, whose collector is the paced mock), each counted by
# scripts/instructions.sh (callgrind: 20 streams of 200 paced tokens), ROUNDS times in turn; the
# medians are compared. One count varies by a few percent with how the runs' saves and wake-ups
# happen to fall together, so a single pair can say more or less than the truth.
#
# Usage: scripts/trace-cost.sh [BINARY]   (default: target/release/model-compose; ROUNDS=3)
set -euo pipefail

ROUNDS=${ROUNDS:-3}
BUDGET_PERCENT=5
cd "$(dirname "$0")/.."
binary=${1:-target/release/model-compose}

# The instructions per token of one count of $binary serving config $1.
per_token() {
  CONFIG=$1 bash scripts/instructions.sh "$binary" | sed -n 's/.*: \([0-9]*\) instructions per token.*/\1/p'
}

median() {
  printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

seed=() traced=()
for round in $(seq "$ROUNDS"); do
  seed+=("$(per_token examples/openai-chat-completions-stream/model-compose.yml)")
  traced+=("$(per_token benches/configs/seed-traced.yml)")
  echo "round $round: seed ${seed[-1]}, traced ${traced[-1]} instructions per token"
done
base=$(median "${seed[@]}")
with=$(median "${traced[@]}")
rise=$(awk -v a="$base" -v b="$with" 'BEGIN { printf "%+.1f", (b - a) * 100 / a }')
mark=$(awk -v r="$rise" -v most="$BUDGET_PERCENT" 'BEGIN { print (r <= most) ? "✓" : "✗" }')
echo "tracing: $base → $with instructions per streamed token (medians of $ROUNDS): $rise % (goal ≤ +$BUDGET_PERCENT %) $mark"
