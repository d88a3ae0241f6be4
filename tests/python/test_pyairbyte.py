"""PyAirbyte (PyPI `airbyte`, pinned in requirements-pyairbyte.txt) drives the connector exactly as
a user would: `get_source(..., local_executable=bin/source-instagram)`, `check()`, every stream
selected, `read()` into a DuckDB cache, then a second `read()` that resumes from the cache's state.

Runs offline: the AIRBYTE_* variables are set before `import airbyte`, which reads them at import.
The sandbox origin reaches the host through SOURCE_INSTAGRAM_ALLOW_HOSTS, the only way an
operator setting can get past a client that passes just the verb and its files."""

import json
import os
from collections import Counter
from datetime import datetime, timezone

import pytest

from conftest import ALL_STREAMS, ROOT, CATALOG, EXECUTABLE, configured_catalog, run_source

import pyairbyte_offline  # noqa: F401  (sets the AIRBYTE_* environment before `import airbyte`)
import airbyte  # noqa: E402

# The discovered primary keys (PyAirbyte's column names are the same); a stream without one is
# compared on `id`, which still identifies its objects.
KEYS = {
    stream["name"]: [path[0] for path in stream.get("source_defined_primary_key", [])] or ["id"]
    for stream in CATALOG["streams"]
}


@pytest.fixture(scope="module")
def source(sandbox):
    os.environ["SOURCE_INSTAGRAM_ALLOW_HOSTS"] = sandbox.origin
    src = airbyte.get_source("source-instagram", config=sandbox.config(), local_executable=str(EXECUTABLE))
    src.select_all_streams()
    return src


@pytest.fixture(scope="module")
def cli_read(sandbox, tmp_path_factory):
    """The same sync through the CLI, for comparison: {stream: Counter of key tuples}."""
    run = run_source(tmp_path_factory.mktemp("cli"), "read", origin=sandbox.origin,
                     config=sandbox.config(), catalog=configured_catalog())
    assert run.code == 0, run.errors()
    keys = {stream: Counter() for stream in ALL_STREAMS}
    for record in run.records():
        keys[record["stream"]][tuple(key_value(record["data"][k]) for k in KEYS[record["stream"]])] += 1
    return keys


def key_value(value) -> str:
    """A key value as text; DuckDB stores date-times as timestamps, so compare them in UTC."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return (moment.astimezone(timezone.utc) if moment.tzinfo else moment).strftime("%Y-%m-%dT%H:%M:%S")


def table_keys(cache, stream: str) -> Counter:
    frame = cache[stream].to_pandas()
    return Counter(tuple(key_value(row[k]) for k in KEYS[stream]) for _, row in frame.iterrows())


def test_check_passes(source):
    source.check()


def test_read_into_duckdb_matches_the_cli_then_resumes_from_state(source, cli_read, tmp_path_factory):
    cache = airbyte.caches.DuckDBCache(db_path=str(tmp_path_factory.mktemp("duckdb") / "sync.duckdb"))
    result = source.read(cache=cache)
    assert sorted(result.streams) == sorted(ALL_STREAMS)
    for stream in ALL_STREAMS:
        assert table_keys(cache, stream) == cli_read[stream], stream
        assert sum(cli_read[stream].values()) > 0, stream

    first_counts = {stream: len(cache[stream].to_pandas()) for stream in ALL_STREAMS}
    state = cache.get_state_provider("source-instagram").get_stream_state("user_insights")
    blob = state.stream.stream_state
    cursors = blob.dict() if hasattr(blob, "dict") else vars(blob)
    accounts = [k for k, v in cursors.items() if isinstance(v, dict)]
    assert len(accounts) == 2, cursors

    # The daily totals' breakdowns land as JSON a query can open.
    totals = cache["user_daily_totals"].to_pandas()
    split = totals["views_by_media_product_type"].iloc[0]
    split = json.loads(split) if isinstance(split, str) else split
    assert set(split) == {"AD", "FEED", "REEL", "STORY"}, split

    second = source.read(cache=cache)
    # user_insights resumed from the cached state: only each account's cursor day came again;
    # user_daily_totals: the cursor day and the two lag days before it.
    dated = ("user_insights", "user_daily_totals")
    full_refresh = sum(count for stream, count in first_counts.items() if stream not in dated)
    assert second.processed_records == full_refresh + len(accounts) + 3 * len(accounts)
    # Full-refresh tables are replaced or merged on their key, and user_insights merged: never doubled.
    for stream in ALL_STREAMS:
        assert len(cache[stream].to_pandas()) == first_counts[stream], stream


def test_an_instagram_login_refresh_reaches_pyairbytes_config_change_callback(sandbox):
    """PyAirbyte hands a CONTROL `CONNECTOR_CONFIG` to `config_change_callback`: the refreshed
    token reaches the caller, who keeps it (PyAirbyte itself persists nothing)."""
    os.environ["SOURCE_INSTAGRAM_ALLOW_HOSTS"] = sandbox.origin
    seen = []
    config = sandbox.config(access_token="IGAAsandbox-token", auth_type="instagram_login")
    src = airbyte.get_source("source-instagram", config=config, local_executable=str(EXECUTABLE),
                             config_change_callback=seen.append)
    src.select_streams(["users", "media"])
    result = src.read(cache=airbyte.new_local_cache("instagram_login"))
    assert len(result["media"].to_pandas()) > 0
    assert seen, "the refreshed config reached the callback"
    assert seen[-1]["access_token"].startswith("IGAAsandbox-token-refreshed-")
    assert {k: v for k, v in seen[-1].items() if k != "access_token"} == \
        {k: v for k, v in config.items() if k != "access_token"}


def test_pyairbyte_installs_the_wheel_by_pip_url_and_reads_every_stream(sandbox, cli_read):
    """`get_source(…, pip_url=<the built wheel>)`: PyAirbyte makes the connector's venv itself."""
    wheels = sorted((ROOT / "dist").glob("source_instagram-*.whl"))
    assert len(wheels) == 1, f"one wheel in dist/ (run `make wheel`): {wheels}"
    wheel = wheels[0]
    os.environ["SOURCE_INSTAGRAM_ALLOW_HOSTS"] = sandbox.origin
    # PyAirbyte builds the connector's venv with `uv`, which it looks for on PATH.
    uv_bin = ROOT / "target" / "py" / "wheel" / "bin"
    os.environ["PATH"] = f"{uv_bin}{os.pathsep}{os.environ['PATH']}"
    source = airbyte.get_source("source-instagram", config=sandbox.config(), pip_url=str(wheel),
                                install_if_missing=True)
    source.select_all_streams()
    cache = airbyte.new_local_cache("by_pip_url")
    result = source.read(cache=cache)
    assert sorted(result.streams) == sorted(ALL_STREAMS)
    for stream in ALL_STREAMS:
        assert table_keys(cache, stream) == cli_read[stream], stream
