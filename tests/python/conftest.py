"""Shared fixtures of the Python suites: the built connector executable and a real Graph API
sandbox process on loopback. Every suite drives `bin/source-instagram` as Airbyte clients do:
a subprocess with the verb and its files, operator settings from the environment."""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXECUTABLE = ROOT / "bin" / "source-instagram"
SANDBOX = ROOT / "target" / "release" / "graph-sandbox"
TOKEN = "sandbox-token"


def discovered_catalog() -> dict:
    """The connector's own catalog (discover needs a config, not the network)."""
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".json") as config:
        config.write(json.dumps({"access_token": TOKEN}))
        config.flush()
        done = subprocess.run([str(EXECUTABLE), "discover", "--config", config.name], capture_output=True, text=True, check=True)
    return next(m for m in map(json.loads, done.stdout.splitlines()) if m["type"] == "CATALOG")["catalog"]


CATALOG = discovered_catalog()
# Every stream, in discover order, as the connector's registry lists them.
ALL_STREAMS = [stream["name"] for stream in CATALOG["streams"]]


class Sandbox:
    """A `graph-sandbox` process on a free loopback port, stopped by `close()`."""

    def __init__(self, *args: str):
        self.process = subprocess.Popen(
            [str(SANDBOX), "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        self.base_url = self.process.stdout.readline().strip()
        if not self.base_url:
            raise RuntimeError("the sandbox did not start (run `make build` first)")
        self.origin = self.base_url.rsplit("/", 1)[0]

    def config(self, **extra) -> dict:
        return {"access_token": TOKEN, "base_url": self.base_url, "num_workers": 4, **extra}

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def sandbox():
    box = Sandbox("--accounts", "2", "--media", "8", "--stories", "2")
    yield box
    box.close()


class Run:
    """One connector invocation: exit code, parsed stdout messages, raw streams."""

    def __init__(self, code: int, stdout: str, stderr: str):
        self.code, self.stdout, self.stderr = code, stdout, stderr
        self.messages = [json.loads(line) for line in stdout.splitlines()]

    def of_type(self, kind: str) -> list:
        return [m for m in self.messages if m["type"] == kind]

    def records(self, stream: str | None = None) -> list:
        return [m["record"] for m in self.of_type("RECORD") if stream is None or m["record"]["stream"] == stream]

    def errors(self) -> list:
        return [m["trace"]["error"] for m in self.of_type("TRACE") if m["trace"]["type"] == "ERROR"]

    def final_states(self) -> dict:
        """The last state of each stream."""
        return {m["state"]["stream"]["stream_descriptor"]["name"]: m["state"] for m in self.of_type("STATE")}


def operator_env(origin: str | None) -> dict:
    env = dict(os.environ)
    env.pop("SOURCE_INSTAGRAM_ALLOW_HOSTS", None)
    if origin:
        env["SOURCE_INSTAGRAM_ALLOW_HOSTS"] = origin
    return env


def run_source(tmp_path: Path, verb: str, *, origin: str | None = None, config=None, catalog=None,
               state=None, extra=()) -> Run:
    """Runs `bin/source-instagram VERB` with JSON documents written to files, as a client would."""
    args = [str(EXECUTABLE), verb]
    for flag, document in (("--config", config), ("--catalog", catalog), ("--state", state)):
        if document is not None:
            path = tmp_path / f"{verb}-{flag[2:]}-{len(list(tmp_path.iterdir()))}.json"
            path.write_text(document if isinstance(document, str) else json.dumps(document))
            args += [flag, str(path)]
    done = subprocess.run([*args, *extra], capture_output=True, text=True, env=operator_env(origin), timeout=300)
    return Run(done.returncode, done.stdout, done.stderr)


def configured_catalog(streams=ALL_STREAMS, sync_mode="incremental", **overrides) -> dict:
    """A configured catalog as PyAirbyte builds it: every stream asks `sync_mode`."""
    return {"streams": [{
        "stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
        "sync_mode": sync_mode, "destination_sync_mode": "overwrite", **overrides,
    } for name in streams]}
