#!/usr/bin/env bash
# `make bench-instructions`: the server's own work per streamed token, counted in instructions
# by callgrind, which (unlike CPU time on a shared two-core machine) comes out nearly the same
# from run to run: within a few per cent (REPEAT=3 for medians). Each binary serves the seed config in front of the paced mock
# (`benches/paced.rs --mock`: 200 tokens 50 ms apart per reply), once with one run and once
# with that run then STREAMS concurrent streamed runs; the difference over the tokens streamed is what one
# token costs, its share of its run's setup included. User space only: the kernel's part
# (socket reads and writes, wake-ups) is not counted.
#
# Usage: scripts/instructions.sh [BINARY...]   (default: target/release/model-compose)
# Give two binaries (say, before and after a change) to compare them in one run. CONFIG=FILE
# serves another config in front of the same mock (its OpenAI base URL replaced), EVENTS=N the
# `data:` events each of its streams must have (default: one per token). PROFILE=DIR keeps the
# callgrind profiles in DIR (busy, and `.idle`), for `callgrind_annotate`. TOKENS=N answers N tokens per
# stream instead of 200: with few (`TOKENS=5 EVENTS=5 STREAMS=50`), the figure per run is what a
# run costs besides its tokens, near enough. REPEAT=N counts each binary N times, in turns, and
# prints each one's median.
set -euo pipefail

STREAMS=${STREAMS:-20}
TOKENS=${TOKENS:-200}
CONFIG=${CONFIG:-examples/openai-chat-completions-stream/model-compose.yml}
EVENTS=${EVENTS:-$TOKENS}
REPEAT=${REPEAT:-1}
API_PORT=${API_PORT:-18480}

if ! command -v valgrind >/dev/null; then
  echo "instructions: valgrind is missing; install it with: apt-get install -y valgrind" >&2
  exit 1
fi
cd "$(dirname "$0")/.."
binaries=("$@")
[ ${#binaries[@]} -gt 0 ] || binaries=(target/release/model-compose)
for i in "${!binaries[@]}"; do
  [ -x "${binaries[$i]}" ] || { echo "instructions: no server binary at ${binaries[$i]} (run make release)" >&2; exit 1; }
  binaries[$i]=$(realpath "${binaries[$i]}")
done

paced=$(cargo bench --locked --bench paced --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p')
[ -x "$paced" ] || { echo "instructions: cannot build the paced benchmark's mock" >&2; exit 1; }

work=$(mktemp -d)
mock_pid=
cleanup() {
  [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The mock prints its port on its first line.
exec {mock_out}< <(exec "$paced" --mock)
mock_pid=$!
read -r mock_port <&"$mock_out"

# Instructions the server at $1 executes over its whole life while serving $2 streams.
count() {
  local binary=$1 streams=$2 dir
  dir=$(mktemp -d "$work/run.XXXX")
  sed -e "s#https://api.openai.com/v1#http://127.0.0.1:$mock_port/paced/$TOKENS/50/v1#" \
      -e "s/port: 8080/port: $API_PORT/" -e "s/port: 8081/port: 0/" \
      "$CONFIG" > "$dir/model-compose.yml"
  (cd "$dir" && OPENAI_API_KEY=sk-bench exec valgrind --tool=callgrind \
      --callgrind-out-file="$dir/callgrind.out" "$binary" up >"$dir/log" 2>&1) &
  local server=$! healthy=
  for _ in $(seq 600); do
    curl -sf -o /dev/null "http://127.0.0.1:$API_PORT/api/health" && { healthy=1; break; }
    sleep 0.1
  done
  [ -n "$healthy" ] || { echo "instructions: $binary did not become healthy: $(tail -3 "$dir/log")" >&2; exit 1; }
  # One run first, counted with and without the streams: what is made once, at the first run
  # (the upstream client's root certificates, a tracer's HTTP client), is no cost per token.
  curl -sfN -X POST "http://127.0.0.1:$API_PORT/api/workflows/runs" \
    -H 'Content-Type: application/json' \
    -d '{"input":{"prompt":"Hi","temperature":0.7}}' -o "$dir/warm-up" \
    || { echo "instructions: the first run failed (see $dir/log)" >&2; exit 1; }
  local clients=()
  for i in $(seq "$streams"); do
    curl -sfN -X POST "http://127.0.0.1:$API_PORT/api/workflows/runs" \
      -H 'Content-Type: application/json' \
      -d '{"input":{"prompt":"Hi","temperature":0.7}}' -o "$dir/out$i" &
    clients+=($!)
  done
  for client in "${clients[@]}"; do
    wait "$client" || { echo "instructions: a stream failed (see $dir/log)" >&2; exit 1; }
  done
  for i in $(seq "$streams"); do
    local events
    events=$(grep -c '^data:' "$dir/out$i" || true)
    [ "$events" = "$EVENTS" ] || { echo "instructions: stream $i had $events events, not $EVENTS" >&2; exit 1; }
  done
  kill -INT "$server"
  wait "$server" || true
  # PROFILE=DIR keeps each profile there, for callgrind_annotate (the busy one, and the one
  # with none beside it, named `.idle`: what a run costs is their difference).
  if [ -n "${PROFILE:-}" ]; then
    local name
    name=$(basename "$binary")$([ "$streams" -gt 0 ] || echo .idle).callgrind
    mkdir -p "$PROFILE" && cp "$dir/callgrind.out" "$PROFILE/$name"
  fi
  sed -n 's/^totals: //p' "$dir/callgrind.out"
}

echo "model-compose instructions per token (callgrind): $STREAMS streams of $TOKENS paced tokens ($CONFIG)"
declare -A counted
for round in $(seq "$REPEAT"); do
  for binary in "${binaries[@]}"; do
    idle=$(count "$binary" 0)
    busy=$(count "$binary" "$STREAMS")
    per_token=$(( (busy - idle) / (STREAMS * TOKENS) ))
    counted[$binary]+="$per_token "
    echo "$binary: $per_token instructions per token, $(( (busy - idle) / STREAMS )) per run ($busy with $STREAMS streams, $idle with none)"
  done
done
# The count moves by a few per cent from run to run (how the tokens met the workers' sleeps):
# with REPEAT=N, the binaries take turns N times and each one's median is what to quote.
if [ "$REPEAT" -gt 1 ]; then
  for binary in "${binaries[@]}"; do
    median=$(tr ' ' '\n' <<<"${counted[$binary]}" | grep . | sort -n | sed -n "$(( (REPEAT + 1) / 2 ))p")
    echo "$binary: median of $REPEAT: $median instructions per token (${counted[$binary]% })"
  done
fi
