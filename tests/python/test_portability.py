"""One artifact, many hosts: the same `instagram_connector.wasm` (byte for byte what `make build`
writes) syncs all eight streams from one sandbox under
- our wasmtime host CLI (`bin/source-instagram`),
- the embedding example (`host/examples/sync_from_sandbox.rs`),
- stock `wasmtime run` (wasmtime-cli, on `connector-cli.wasm`: the component with the
  stdout-sink component plugged in by `wac plug`),
- Node.js through jco (`tests/node`),
and every host must give the same records per stream and the same final states. Prints the
matrix. `make portability` builds the tools and runs it."""

import hashlib
import json
import shutil
import subprocess
import time
from collections import Counter

import pytest

from airbyte_checks import protocol_error
from conftest import ALL_STREAMS, EXECUTABLE, ROOT, Sandbox, configured_catalog, operator_env

WASM = ROOT / "target" / "guests" / "wasm32-wasip2" / "release"
COMPONENT = WASM / "instagram_connector.wasm"
CLI_COMPONENT = WASM / "connector-cli.wasm"
WASMTIME = ROOT / "target" / "tools" / "bin" / "wasmtime"
EXAMPLE = ROOT / "target" / "release" / "examples" / "sync_from_sandbox"
NODE_DIR = ROOT / "tests" / "node"


@pytest.fixture(scope="module")
def sync(tmp_path_factory):
    """The sandbox (a little latency, so concurrency shows) and the files every host reads."""
    box = Sandbox("--latency-ms", "20")
    data = tmp_path_factory.mktemp("portability")
    (data / "config.json").write_text(json.dumps(box.config(num_workers=15)))
    (data / "catalog.json").write_text(json.dumps(configured_catalog()))
    yield box, data
    box.close()


def hosts(box, data):
    config, catalog = str(data / "config.json"), str(data / "catalog.json")
    yield "wasmtime host CLI", [str(EXECUTABLE), "read", "--config", config, "--catalog", catalog], operator_env(box.origin)
    yield "embedding example", [str(EXAMPLE), box.base_url], None
    yield "wasmtime run", [str(WASMTIME), "run", "-S", "http", "--dir", f"{data}::/data", str(CLI_COMPONENT),
                           "read", "--config", "/data/config.json", "--catalog", "/data/catalog.json"], None
    if shutil.which("node") is None or not (NODE_DIR / "out").is_dir():
        print("\nNode.js: skipped (node/npm absent, so `make portability` did not transpile tests/node/out)")
        return
    yield "Node.js (jco)", ["node", str(NODE_DIR / "run.mjs"), str(NODE_DIR / "out"), "read",
                            "--config", config, "--catalog", catalog], None


def summarize(stdout: str, protocol: bool):
    """Records per stream (sorted data), final states without `lookback_window`, peak in flight.
    The embedding example prints bare `{"stream", "data"}` lines instead of protocol messages."""
    records, states, in_flight = {}, {}, "?"
    for line in stdout.splitlines():
        message = json.loads(line)
        if not protocol:
            records.setdefault(message["stream"], []).append(json.dumps(message["data"], sort_keys=True))
            continue
        assert protocol_error(message) is None, (line, protocol_error(message))
        if message["type"] == "RECORD":
            records.setdefault(message["record"]["stream"], []).append(json.dumps(message["record"]["data"], sort_keys=True))
        elif message["type"] == "STATE":
            stream_state = dict(message["state"]["stream"]["stream_state"])
            stream_state.pop("lookback_window", None)  # this sync's own duration in seconds
            states[message["state"]["stream"]["stream_descriptor"]["name"]] = stream_state
        elif message["type"] == "LOG" and message["log"]["message"].startswith("Read done"):
            in_flight = message["log"]["message"].split("at most ")[1].split(" ")[0]
    return {s: sorted(r) for s, r in records.items()}, states, in_flight


def test_every_host_gives_the_same_records_and_states(sync):
    box, data = sync
    digest = hashlib.sha256(COMPONENT.read_bytes()).hexdigest()
    results = []
    for name, command, env in hosts(box, data):
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        seconds = time.monotonic() - started
        assert done.returncode == 0, f"{name}: {done.stderr[-2000:]}"
        records, states, in_flight = summarize(done.stdout, protocol=name != "embedding example")
        if name == "embedding example":  # its log goes to stderr
            in_flight = done.stderr.split("at most ")[1].split(" ")[0]
        results.append((name, records, states, seconds, in_flight))

    reference_records, reference_states = results[0][1], results[0][2]
    assert sorted(reference_records) == sorted(ALL_STREAMS)
    print(f"\ninstagram_connector.wasm sha256 {digest}")
    print(f"| host | {' | '.join(ALL_STREAMS)} | equal | wall | in flight |")
    print(f"|---|{'---|' * len(ALL_STREAMS)}---|---|---|")
    for name, records, states, seconds, in_flight in results:
        equal = records == reference_records and (not states or states == reference_states)
        counts = " | ".join(str(len(records.get(s, []))) for s in ALL_STREAMS)
        print(f"| {name} | {counts} | {'yes' if equal else 'NO'} | {seconds:.2f} s | {in_flight} |")
    for name, records, states, _, _ in results[1:]:
        assert records == reference_records, name
        if name != "embedding example":  # it prints states to stderr, not as messages
            assert states == reference_states, name
