"""Every stdout line the Rust e2e tests saw (target/e2e-transcripts, written by `run_cli_raw`)
must be a valid Airbyte message by the official protocol models, and every record must match the
schema that `discover` returns. Runs after `cargo test` in `make test`."""

import json
from pathlib import Path

import pytest

from airbyte_checks import RecordChecker, protocol_error
from conftest import ROOT, run_source

TRANSCRIPTS = ROOT / "target" / "e2e-transcripts"


def transcript_lines():
    for path in sorted(TRANSCRIPTS.glob("*.jsonl")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            yield path.name, number, line


@pytest.fixture(scope="module")
def checker(sandbox, tmp_path_factory):
    run = run_source(tmp_path_factory.mktemp("discover"), "discover", origin=sandbox.origin, config=sandbox.config())
    assert run.code == 0, run.stderr
    return RecordChecker(run.of_type("CATALOG")[0]["catalog"])


def test_every_e2e_stdout_line_is_a_valid_airbyte_message():
    if not TRANSCRIPTS.is_dir():
        pytest.fail(f"{TRANSCRIPTS} is missing: run the Rust e2e tests first (make test does)")
    failures, checked, kinds = [], 0, {}
    for name, number, line in transcript_lines():
        checked += 1
        message = json.loads(line)
        kinds[message.get("type")] = kinds.get(message.get("type"), 0) + 1
        if (error := protocol_error(message)) is not None:
            failures.append(f"{name}:{number}: {error}")
    print(f"\n{checked} stdout lines from {len(list(TRANSCRIPTS.glob('*.jsonl')))} e2e runs validated: {kinds}")
    assert checked > 1000, "the e2e tests should have produced many messages"
    assert not failures, "\n".join(failures[:20])


def test_every_e2e_record_matches_its_discovered_schema(checker):
    failures, checked = [], 0
    for name, number, line in transcript_lines():
        message = json.loads(line)
        if message.get("type") != "RECORD":
            continue
        checked += 1
        for error in checker.errors(message["record"]["stream"], message["record"]["data"]):
            failures.append(f"{name}:{number}: {message['record']['stream']}: {error}")
    print(f"\n{checked} records validated against their discovered schemas")
    assert checked > 1000
    assert not failures, "\n".join(failures[:20])


def test_keys_and_cursors_are_declared_in_the_schemas(checker):
    assert checker.schema_declares_keys() == []
