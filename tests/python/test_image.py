"""The Airbyte connector image (`make image`) run by podman the way the Airbyte platform runs a
source: the verb and files mounted into the container, operator settings in the environment, the
sandbox reached over the host network. Every stdout line is validated by the protocol models."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from airbyte_checks import protocol_error
from conftest import ROOT, Run, configured_catalog

METADATA = (ROOT / "host" / "image" / "metadata.yaml").read_text()
REPOSITORY = re.search(r"^  dockerRepository: (\S+)$", METADATA, re.M).group(1)
TAG = re.search(r"^  dockerImageTag: (\S+)$", METADATA, re.M).group(1)
IMAGE = f"{REPOSITORY}:{TAG}"
ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "host" / "image" / "containers.conf")}


def podman(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, env=ENV, timeout=300)


def in_container(data: Path, origin: str, *verb: str) -> Run:
    done = podman("run", "--rm", "--network", "host", "-v", f"{data}:/data",
                  "-e", f"SOURCE_INSTAGRAM_ALLOW_HOSTS={origin}", IMAGE, *verb)
    run = Run(done.returncode, done.stdout, done.stderr)
    invalid = [(m, e) for m in run.messages if (e := protocol_error(m))]
    assert not invalid, invalid[:3]
    return run


@pytest.fixture(scope="module")
def data(sandbox, tmp_path_factory):
    directory = tmp_path_factory.mktemp("image")
    (directory / "config.json").write_text(json.dumps(sandbox.config()))
    (directory / "catalog.json").write_text(json.dumps(configured_catalog(["Api", "users", "media"])))
    return directory


def test_the_image_carries_airbyte_labels_and_entrypoint():
    inspected = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
    labels = inspected["Config"]["Labels"]
    assert (labels["io.airbyte.name"], labels["io.airbyte.version"]) == (REPOSITORY, TAG)
    env = dict(item.split("=", 1) for item in inspected["Config"]["Env"])
    assert env["AIRBYTE_ENTRYPOINT"].split() == inspected["Config"]["Entrypoint"]
    print(f"\n{IMAGE}: {inspected['Size'] / 2**20:.1f} MiB")


def test_spec_check_and_read_inside_the_container(sandbox, data):
    spec = in_container(data, sandbox.origin, "spec")
    assert spec.code == 0 and spec.of_type("SPEC"), spec.stderr
    check = in_container(data, sandbox.origin, "check", "--config", "/data/config.json")
    assert check.of_type("CONNECTION_STATUS")[0]["connectionStatus"]["status"] == "SUCCEEDED", check.stderr
    read = in_container(data, sandbox.origin, "read", "--config", "/data/config.json", "--catalog", "/data/catalog.json")
    assert read.code == 0, read.errors()
    assert {stream: len(read.records(stream)) for stream in ("Api", "users", "media")} == {"Api": 2, "users": 2, "media": 16}


def test_without_the_environment_allow_list_the_container_reaches_nothing(sandbox, data):
    done = podman("run", "--rm", "--network", "host", "-v", f"{data}:/data", IMAGE, "check", "--config", "/data/config.json")
    status = Run(done.returncode, done.stdout, done.stderr).of_type("CONNECTION_STATUS")[0]["connectionStatus"]
    assert status["status"] == "FAILED"
