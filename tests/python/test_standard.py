"""What Airbyte's own suite (airbyte-cdk's DockerConnectorTestSuite, run unchanged by
`make test-image` from tests/cdk/source-instagram/) does not check, run against the real
executable and a real sandbox: our secret fields and spec details, the words of a failed check,
discover's cursors and keys, secrets in every spelling, bad catalogs, idempotent full refresh,
incremental resumption from every state, and states in the future. The CDK suite checks the image's
spec (lint and backward compatibility), check with a good and a bad config, config against
spec, discover, and a read of every stream with each record validated against its schema. Every
stdout line of every run here is validated by the official protocol models as well."""

import json

import jsonschema
import pytest

from airbyte_checks import RecordChecker, protocol_error
from conftest import ALL_STREAMS, Run, Sandbox, configured_catalog, run_source

SECRET_TOKEN = "EAAB-standard-suite-token-4d1f9c"
CLIENT_SECRET = "client-secret-7a3e55"


@pytest.fixture(scope="module")
def secret_sandbox():
    box = Sandbox("--accounts", "2", "--media", "6", "--stories", "2", "--token", SECRET_TOKEN)
    yield box
    box.close()


@pytest.fixture
def source(secret_sandbox, tmp_path):
    """Runs a verb against the sandbox and asserts that every stdout line is a valid message."""

    def run(verb, **kwargs) -> Run:
        kwargs.setdefault("origin", secret_sandbox.origin)
        result = run_source(tmp_path, verb, **kwargs)
        invalid = [(line, error) for line in result.messages if (error := protocol_error(line))]
        assert not invalid, f"invalid Airbyte messages: {invalid[:3]}"
        return result

    return run


def config(sandbox, **extra):
    return sandbox.config(**{"access_token": SECRET_TOKEN, "client_secret": CLIENT_SECRET, **extra})


def data_only(run: Run) -> dict:
    """Records per stream, without `emitted_at`, sorted."""
    per_stream = {}
    for record in run.records():
        per_stream.setdefault(record["stream"], []).append(json.dumps(record["data"], sort_keys=True))
    return {stream: sorted(rows) for stream, rows in per_stream.items()}


def test_spec_lint(source):
    run = source("spec")
    assert run.code == 0
    spec = run.of_type("SPEC")[0]["spec"]
    schema = spec["connectionSpecification"]
    jsonschema.Draft7Validator.check_schema(schema)
    assert spec["documentationUrl"].startswith("https://")
    assert set(schema["required"]) <= set(schema["properties"])
    for name, prop in schema["properties"].items():
        assert prop.get("title") and prop.get("description") and prop.get("type"), name
    for secret in ("access_token", "client_id", "client_secret"):
        assert schema["properties"][secret].get("airbyte_secret") is True, secret
    assert "default" not in schema["properties"]["access_token"]


def test_check_with_a_bad_token_fails_naming_code_190_and_what_to_do(source, secret_sandbox):
    run = source("check", config=config(secret_sandbox, access_token="EAAB-expired"))
    assert run.code == 0
    status = run.of_type("CONNECTION_STATUS")[0]["connectionStatus"]
    assert status["status"] == "FAILED"
    assert "190" in status["message"] and "authenticate" in status["message"].lower(), status["message"]


def test_discover(source, secret_sandbox):
    run = source("discover", config=config(secret_sandbox))
    assert run.code == 0
    catalog = run.of_type("CATALOG")[0]["catalog"]
    assert [s["name"] for s in catalog["streams"]] == ALL_STREAMS
    checker = RecordChecker(catalog)
    assert checker.schema_declares_keys() == []
    for stream in catalog["streams"]:
        assert "full_refresh" in stream["supported_sync_modes"]
        if "incremental" in stream["supported_sync_modes"]:
            assert stream["source_defined_cursor"] and stream["default_cursor_field"], stream["name"]


def test_basic_read_validates_and_leaks_no_secret(source, secret_sandbox):
    cfg = config(secret_sandbox)
    catalog = source("discover", config=cfg).of_type("CATALOG")[0]["catalog"]
    run = source("read", config=cfg, catalog=configured_catalog())
    assert run.code == 0, run.errors()
    checker = RecordChecker(catalog)
    streams = {r["stream"] for r in run.records()}
    assert streams == set(ALL_STREAMS)
    errors = [(r["stream"], e) for r in run.records() for e in checker.errors(r["stream"], r["data"])]
    assert errors == []
    for secret in (SECRET_TOKEN, CLIENT_SECRET):
        assert secret not in run.stdout and secret not in run.stderr


@pytest.mark.parametrize("catalog", [
    "{not json",
    {"streams": "media"},
    {"streams": [{"sync_mode": "full_refresh"}]},
    {"streams": [{"stream": {"name": "users"}, "sync_mode": "sideways"}]},
])
def test_a_bad_catalog_fails_with_a_trace_error(source, secret_sandbox, catalog):
    run = source("read", config=config(secret_sandbox), catalog=catalog)
    assert run.code == 1
    assert [e["failure_type"] for e in run.errors()] == ["config_error"]
    assert run.records() == []


def test_an_unknown_stream_fails_alone_with_a_config_error(source, secret_sandbox):
    catalog = configured_catalog(["users", "no_such_stream"])
    run = source("read", config=config(secret_sandbox), catalog=catalog)
    assert run.code == 1
    stream_errors = [e for e in run.errors() if e.get("stream_descriptor")]
    assert [(e["stream_descriptor"]["name"], e["failure_type"]) for e in stream_errors] == [("no_such_stream", "config_error")]
    assert len(run.records("users")) == 2


def test_full_refresh_is_idempotent(source, secret_sandbox):
    cfg, catalog = config(secret_sandbox), configured_catalog(sync_mode="full_refresh")
    first, second = source("read", config=cfg, catalog=catalog), source("read", config=cfg, catalog=catalog)
    assert first.code == second.code == 0
    assert data_only(first) == data_only(second)


def user_insights_read(source, sandbox, state=None) -> Run:
    run = source("read", config=config(sandbox), catalog=configured_catalog(["user_insights"]),
                 state=None if state is None else [state])
    assert run.code == 0, run.errors()
    return run


def cursors(state: dict) -> dict:
    """Account → cursor date of a user_insights STATE (per-partition form)."""
    return {e["partition"]["business_account_id"]: e["cursor"]["date"] for e in state["stream"]["stream_state"]["states"]}


def test_incremental_second_read_gives_only_the_lookback_window(source, secret_sandbox):
    first = user_insights_read(source, secret_sandbox)
    final = first.final_states()["user_insights"]
    second = user_insights_read(source, secret_sandbox, final)
    assert len(cursors(final)) == 2
    assert len(first.records()) > 2 * len(cursors(final))
    # One day per account: the cursor day, whose values may still change.
    assert sorted((r["data"]["business_account_id"], r["data"]["date"]) for r in second.records()) == sorted(
        cursors(final).items()
    )


def test_incremental_reads_from_each_intermediate_state_cover_what_followed_it(source, secret_sandbox):
    first = user_insights_read(source, secret_sandbox)
    records_after = []
    for index, message in enumerate(first.messages):
        if message["type"] == "STATE":
            later = {json.dumps(m["record"]["data"], sort_keys=True) for m in first.messages[index + 1:] if m["type"] == "RECORD"}
            records_after.append((message["state"], later))
    assert len(records_after) >= 2
    for state, later in records_after:
        resumed = {json.dumps(r["data"], sort_keys=True) for r in user_insights_read(source, secret_sandbox, state).records()}
        assert later <= resumed


@pytest.mark.parametrize("date", ["2099-01-01T00:00:00+00:00", "9999-12-31T00:00:00+00:00"])
def test_a_state_in_the_future_gives_no_records_and_exit_0(source, secret_sandbox, date):
    state = user_insights_read(source, secret_sandbox).final_states()["user_insights"]
    for entry in state["stream"]["stream_state"]["states"]:
        entry["cursor"]["date"] = date
    run = user_insights_read(source, secret_sandbox, state)
    assert run.records() == []
