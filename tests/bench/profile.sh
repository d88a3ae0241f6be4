#!/usr/bin/env bash
# `make profile`: where a Benchmark L sync spends its CPU, with the guest's Rust functions named.
# Builds an unstripped copy of the component under target/profile, serves Benchmark L from the
# sandbox, records the host with `perf` (wasmtime writes a perf map for the compiled guest when
# SOURCE_INSTAGRAM_PERF_MAP is set) and prints the hottest functions and the share per library.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)"; exit 1; }
cargo build --release --locked -p instagram-connector --target wasm32-wasip2 --target-dir target/profile \
  --config 'profile.release.package.instagram-connector.strip=false' --quiet
component=target/profile/wasm32-wasip2/release/instagram_connector.wasm
host=target/release/source-instagram-host
work=$(mktemp -d)
trap 'kill "$sandbox" 2>/dev/null || true; rm -rf "$work"' EXIT
target/release/graph-sandbox --port 0 --accounts 2 --pages-without-instagram 0 --media 2000 --stories 5 \
  >"$work/sandbox.out" 2>/dev/null &
sandbox=$!
until [ -s "$work/sandbox.out" ]; do sleep 0.1; done
base=$(head -1 "$work/sandbox.out")
printf '{"access_token":"sandbox-token","base_url":"%s"}' "$base" >"$work/config.json"
"$host" "$component" discover --config "$work/config.json" | python3 -c '
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message["type"] == "CATALOG":
        streams = message["catalog"]["streams"]
        print(json.dumps({"streams": [{"stream": s, "destination_sync_mode": "append",
            "sync_mode": "incremental" if "incremental" in s["supported_sync_modes"] else "full_refresh"} for s in streams]}))
' >"$work/catalog.json"
run=("$host" "$component" --cache-dir "$work/cache" --allow-host "${base%/v*}" read --config "$work/config.json" --catalog "$work/catalog.json")
"${run[@]}" >/dev/null  # compiles into the cache, so the recorded run does not
SOURCE_INSTAGRAM_PERF_MAP=1 perf record -q -F 4999 -g -o "$work/perf.data" "${run[@]}" >/dev/null 2>&1
set +o pipefail  # `head` closes the pipe early
echo "## Share of CPU samples per library (the .cwasm is the guest)"
perf report -i "$work/perf.data" --no-children --sort dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -6
echo "## Hottest functions"
perf report -i "$work/perf.data" --no-children --sort sym -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -25 | cut -c1-150
