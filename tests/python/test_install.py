"""Installable by name: the wheel `make wheel` builds (maturin; its one console command is the
one-file connector) installs offline into a fresh venv and with `uv tool install`, and syncs the
sandbox through the installed `source-instagram` (PyAirbyte by `pip_url`: test_pyairbyte.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ALL_STREAMS, ROOT, Run, configured_catalog, operator_env

WHEELS = sorted((ROOT / "dist").glob("source_instagram-*.whl"))
UV = ROOT / "target" / "py" / "wheel" / "bin" / "uv"


@pytest.fixture(scope="module")
def wheel() -> Path:
    assert len(WHEELS) == 1, f"one wheel in dist/ (run `make wheel`): {WHEELS}"
    return WHEELS[0]


def sync(executable: Path, sandbox, tmp_path: Path) -> Run:
    (tmp_path / "config.json").write_text(json.dumps(sandbox.config()))
    (tmp_path / "catalog.json").write_text(json.dumps(configured_catalog()))
    done = subprocess.run(
        [str(executable), "read", "--config", str(tmp_path / "config.json"), "--catalog", str(tmp_path / "catalog.json")],
        capture_output=True, text=True, env=operator_env(sandbox.origin), timeout=300,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def test_the_wheel_installs_offline_and_its_command_syncs_every_stream(wheel, sandbox, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--no-index", str(wheel)], check=True)
    installed = venv / "bin" / "source-instagram"
    assert installed.exists() and not any((venv / "bin").glob("*.wasm"))
    run = sync(installed, sandbox, tmp_path)
    assert run.code == 0, run.errors()
    assert {stream for stream in ALL_STREAMS if run.records(stream)} == set(ALL_STREAMS)


def test_uv_tool_install_gives_the_same_command(wheel, tmp_path):
    env = {**os.environ, "UV_TOOL_DIR": str(tmp_path / "tools"), "UV_TOOL_BIN_DIR": str(tmp_path / "bin")}
    subprocess.run([str(UV), "tool", "install", "--offline", str(wheel)], check=True, env=env, capture_output=True)
    done = subprocess.run([str(tmp_path / "bin" / "source-instagram"), "spec"], capture_output=True, text=True)
    assert done.returncode == 0 and json.loads(done.stdout.splitlines()[0])["type"] == "SPEC"
