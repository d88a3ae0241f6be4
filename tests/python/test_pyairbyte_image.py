"""PyAirbyte by image: `get_source(…, docker_image=<the image make image builds>,
use_host_network=True)` reads every stream into DuckDB, through the same `docker` that is podman
as Airbyte's standard suite (tests/cdk/source-instagram/bin/docker) and the project's podman
settings: the host network to reach the sandbox, and the operator allow-list for it. Run by
`make test-image`."""

import os
import re

import pyairbyte_offline  # noqa: F401  (sets the AIRBYTE_* environment before `import airbyte`)
import airbyte  # noqa: E402

from conftest import ALL_STREAMS, ROOT

METADATA = (ROOT / "host" / "image" / "metadata.yaml").read_text()
IMAGE = "localhost/{}:{}".format(
    re.search(r"^  dockerRepository: (\S+)$", METADATA, re.M).group(1),
    re.search(r"^  dockerImageTag: (\S+)$", METADATA, re.M).group(1),
)


def test_pyairbyte_runs_the_image_and_reads_every_stream(sandbox, tmp_path):
    settings = (ROOT / "host" / "image" / "containers.conf").read_text().replace(
        "[containers]", f'[containers]\nnetns = "host"\nenv = ["SOURCE_INSTAGRAM_ALLOW_HOSTS={sandbox.origin}"]'
    )
    (tmp_path / "containers.conf").write_text(settings)
    os.environ["CONTAINERS_CONF"] = str(tmp_path / "containers.conf")
    os.environ["PATH"] = f"{ROOT / 'tests' / 'cdk' / 'source-instagram' / 'bin'}{os.pathsep}{os.environ['PATH']}"
    source = airbyte.get_source("source-instagram", config=sandbox.config(), docker_image=IMAGE,
                                use_host_network=True)
    source.select_all_streams()
    cache = airbyte.new_local_cache("by_image")
    result = source.read(cache=cache)
    assert sorted(result.streams) == sorted(ALL_STREAMS)
    for stream in ALL_STREAMS:
        assert len(cache[stream].to_pandas()) > 0, stream
