"""metadata.user_data as Linode's spec says: base64 of at most 65,535 bytes, at create and at
rebuild, for an image with the cloud-init capability in a region with the Metadata service;
taken through the official SDK (linode_api4), every exchange spec-checked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from linode_api4 import ApiError, LinodeClient

from swarmboot.sim.config import SimConfig, Timings
from swarmboot.sim.engine import Simulator
from swarmboot.sim.server import SimServer

from .conftest import FAST, TOKEN
from .test_linode_api4 import wait_for

PASSWORD = "correct-Horse-battery-42"
CLOUD_CONFIG = "#cloud-config\nruncmd:\n  - [touch, /tmp/booted]\n"


@pytest.fixture
def client(spec_check) -> Iterator[LinodeClient]:
    """A simulator where Linode offers no Metadata service in gb-lon and Debian 13's image
    does not run cloud-init (`swarmboot sim --withhold`)."""
    config = SimConfig(
        port=0,
        token=TOKEN,
        timings=Timings(scale=FAST),
        withheld={"gb-lon": ("Metadata",), "linode/debian13": ("cloud-init",)},
    )
    server = SimServer(Simulator(config), spec_check)
    server.start()
    yield LinodeClient(TOKEN, base_url=server.url)
    server.stop()
    assert list(server.violations) == []


def _create(client: LinodeClient, region: str, image: str, user_data: str | None, **extra):
    metadata = client.linode.build_instance_metadata(user_data=user_data) if user_data else None
    return client.linode.instance_create(
        "g6-nanode-1",
        region,
        image=image,
        root_pass=PASSWORD,
        label=f"n-{region}-{image.split('/')[1]}",
        booted=False,
        **({"metadata": metadata} if metadata else {}),
        **extra,
    )


def _refusal(call) -> tuple[int, str]:
    with pytest.raises(ApiError) as info:
        call()
    (error,) = info.value.json["errors"]
    return info.value.status, f"{error['field']}: {error['reason']}"


def test_the_catalogue_says_where_user_data_is_taken(client):
    regions = {r.id: r.capabilities for r in client.regions()}
    assert "Metadata" in regions["eu-central"] and "Metadata" not in regions["gb-lon"]
    images = {i.id: i.capabilities for i in client.images()}
    assert images["linode/debian12"] == ["cloud-init"] and images["linode/debian13"] == []


def test_user_data_is_taken_at_create_and_at_rebuild_where_the_capabilities_are(client):
    linode = _create(client, "eu-central", "linode/debian12", CLOUD_CONFIG)
    assert linode.has_user_data is True
    plain = _create(client, "eu-central", "linode/ubuntu24.04", None)
    assert plain.has_user_data is False
    wait_for(plain, "offline")  # provisioned: a rebuild may be asked for
    plain.rebuild(
        "linode/debian12",
        root_pass=PASSWORD,
        metadata=client.linode.build_instance_metadata(user_data=CLOUD_CONFIG),
    )
    wait_for(plain, "running")  # rebuilt and booted: the first boot took the user data
    assert plain.has_user_data is True


def test_user_data_is_refused_without_the_capabilities_or_past_the_limit(client):
    assert _refusal(lambda: _create(client, "gb-lon", "linode/debian12", CLOUD_CONFIG)) == (
        400,
        "metadata.user_data: Region gb-lon does not support the Metadata service",
    )
    assert _refusal(lambda: _create(client, "eu-central", "linode/debian13", CLOUD_CONFIG)) == (
        400,
        "metadata.user_data: Image linode/debian13 does not support cloud-init",
    )
    big = "#cloud-config\n" + "#" * 65_535
    assert _refusal(lambda: _create(client, "eu-central", "linode/debian12", big)) == (
        400,
        "metadata.user_data: user_data must not exceed 65535 bytes before encoding",
    )
    not_base64 = {"user_data": "#cloud-config"}
    assert _refusal(
        lambda: client.linode.instance_create(
            "g6-nanode-1",
            "eu-central",
            image="linode/debian12",
            root_pass=PASSWORD,
            metadata=not_base64,
        )
    ) == (400, "metadata.user_data: user_data must be a base64 encoded string")
    # Nor at a rebuild in a region without the service: the Linode keeps its disk.
    london = _create(client, "gb-lon", "linode/debian12", None)
    wait_for(london, "offline")
    assert _refusal(
        lambda: london.rebuild(
            "linode/debian12",
            root_pass=PASSWORD,
            metadata=client.linode.build_instance_metadata(user_data=CLOUD_CONFIG),
        )
    ) == (400, "metadata.user_data: Region gb-lon does not support the Metadata service")
    assert [i.label for i in client.linode.instances()] == ["n-gb-lon-debian12"]
