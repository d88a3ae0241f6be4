"""Airbyte's own standard tests for a connector image, unchanged: airbyte-cdk's
DockerConnectorTestSuite against the image `make image` builds (run by `make test-image`)."""

from airbyte_cdk.test.standard_tests.docker_base import DockerConnectorTestSuite


class TestSourceInstagram(DockerConnectorTestSuite):
    """Every test is the CDK's; nothing is overridden."""
