#!/usr/bin/env bash
# `make run`: a real sync from the offline Graph API sandbox, end to end.
# Starts the sandbox on a free loopback port, runs `check` and a `read` of every stream `discover`
# lists (incremental where supported) through bin/source-instagram, writes all messages to
# out/messages.jsonl and the state to out/state.json, prints a summary and stops the sandbox.
# Run it twice to see an incremental read pick up from out/state.json.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/out"
mkdir -p "$out"

"$root/target/release/graph-sandbox" --port 0 --seed 42 --accounts 3 >"$out/sandbox.url" 2>"$out/sandbox.log" &
sandbox_pid=$!
trap 'kill $sandbox_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [[ -s "$out/sandbox.url" ]] && break; sleep 0.05; done
base_url="$(head -n1 "$out/sandbox.url")"
[[ -n "$base_url" ]] || { echo "the sandbox did not start; see $out/sandbox.log" >&2; exit 1; }

printf '{"access_token":"sandbox-token","base_url":"%s","num_workers":8}\n' "$base_url" >"$out/config.json"
# Every stream `discover` lists, incremental where it supports it.
"$root/bin/source-instagram" discover --config "$out/config.json" | python3 -c '
import json, sys
catalog = next(m for m in map(json.loads, sys.stdin) if m["type"] == "CATALOG")["catalog"]
print(json.dumps({"streams": [{"stream": s, "sync_mode": "incremental" if "incremental" in s["supported_sync_modes"] else "full_refresh",
                               "destination_sync_mode": "append"} for s in catalog["streams"]]}))' >"$out/catalog.json"

echo "== sandbox at $base_url"
echo "== check"
# The sandbox is plain http on loopback: the host refuses that unless the operator opts in.
origin="${base_url%/v*}"
"$root/bin/source-instagram" check --config "$out/config.json" --allow-host "$origin" | tee "$out/check.jsonl"
echo "== read every stream"
status=0
"$root/bin/source-instagram" read --config "$out/config.json" --catalog "$out/catalog.json" --allow-host "$origin" \
  --state "$out/state.json" --state-file "$out/state.json" >"$out/messages.jsonl" || status=$?

python3 - "$out/messages.jsonl" <<'PY'
import collections, json, sys
records, states, statuses, errors = collections.Counter(), collections.Counter(), {}, []
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m["type"] == "RECORD":
        records[m["record"]["stream"]] += 1
    elif m["type"] == "STATE":
        states[m["state"]["stream"]["stream_descriptor"]["name"]] += 1
    elif m["type"] == "TRACE" and m["trace"]["type"] == "STREAM_STATUS":
        s = m["trace"]["stream_status"]
        statuses[s["stream_descriptor"]["name"]] = s["status"]
    elif m["type"] == "TRACE" and m["trace"]["type"] == "ERROR":
        errors.append(m["trace"]["error"]["message"])
print(f"{'stream':<24}{'records':>8}{'states':>8}  status")
for name in statuses:
    print(f"{name:<24}{records[name]:>8}{states[name]:>8}  {statuses[name]}")
for e in errors:
    print("error:", e)
logs = [json.loads(l)["log"]["message"] for l in open(sys.argv[1]) if '"type":"LOG"' in l]
print(next((l for l in logs if l.startswith("Read done")), ""))
PY
echo "== messages in out/messages.jsonl, state in out/state.json (read exit code $status)"
exit $status
