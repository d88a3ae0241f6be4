"""Runs the CDK suite against the Graph API sandbox: starts it, writes the configs the
acceptance-test config names, and gives the CDK a `docker` that is podman with the project's
settings (the host network, so the container reaches the sandbox on 127.0.0.1, and the
operator's allow-list for it)."""

import json
import os
import subprocess
from pathlib import Path

import pytest

pytest_plugins = ["airbyte_cdk.test.standard_tests.pytest_hooks"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SANDBOX = ROOT / "target" / "release" / "graph-sandbox"
# The suite decides at collection whether a `docker` executable exists.
os.environ["PATH"] = f"{HERE / 'bin'}{os.pathsep}{os.environ['PATH']}"


@pytest.fixture(scope="session", autouse=True)
def sandbox(tmp_path_factory):
    process = subprocess.Popen(
        [str(SANDBOX), "--port", "0", "--accounts", "2", "--media", "8", "--stories", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    base_url = process.stdout.readline().strip()
    origin = base_url.rsplit("/", 1)[0]
    secrets = HERE / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "config.json").write_text(
        json.dumps({"access_token": "sandbox-token", "base_url": base_url, "num_workers": 4}))
    (secrets / "invalid_config.json").write_text(
        json.dumps({"access_token": "not-the-sandbox-token", "base_url": base_url}))
    settings = (ROOT / "host" / "image" / "containers.conf").read_text().replace(
        "[containers]",
        f'[containers]\nnetns = "host"\nenv = ["SOURCE_INSTAGRAM_ALLOW_HOSTS={origin}"]',
    )
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(settings)
    os.environ["CONTAINERS_CONF"] = str(conf)
    yield base_url
    process.terminate()
    process.wait(timeout=10)
