"""The one place that builds the real adapters from command-line options."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from swarmboot.report import Reporter

__all__ = [
    "ApiUrlOpt",
    "Bootstrap",
    "BootstrapOpt",
    "SpecArg",
    "SshKeyOpt",
    "TimeoutOpt",
    "make_cloud",
    "make_cloud_context",
    "make_context",
]

SpecArg = Annotated[
    Path,
    typer.Argument(
        metavar="SPEC", dir_okay=False, help="The cluster spec, e.g. examples/itframe.toml."
    ),
]
ApiUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--api-url",
        metavar="URL",
        envvar="SWARMBOOT_API_URL",
        show_envvar=False,
        help="The Linode API to use (default https://api.linode.com/v4; "
        "env SWARMBOOT_API_URL); e.g. a simulator at http://127.0.0.1:8765/v4.",
    ),
]
SshKeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--ssh-key",
        metavar="FILE",
        dir_okay=False,
        help="Private key to log in to the nodes with (default: SWARMBOOT_SSH_KEY, the SSH "
        "agent, ~/.ssh/id_ed25519).",
    ),
]


class Bootstrap(StrEnum):
    stackscript = "stackscript"
    cloud_init = "cloud-init"


BootstrapOpt = Annotated[
    Bootstrap | None,
    typer.Option(
        "--bootstrap",
        help="How new and rebuilt Linodes run the node script on their first boot (default: "
        "the spec's cluster.bootstrap, else stackscript): a published StackScript, or "
        "cloud-init user data through Linode's Metadata service (nothing published).",
    ),
]
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout", metavar="SECONDS", min=1.0, help="How long a node may take to become ready."
    ),
]


def make_cloud(api_url: str | None):
    from swarmboot.cloud import LinodeCloud
    from swarmboot.credentials import find_target

    return LinodeCloud(find_target(api_url))


def _poll_interval() -> float:
    """Seconds between polls while waiting: 5, or SWARMBOOT_POLL_INTERVAL (a simulator whose
    timings are scaled down is worth polling faster)."""
    import os

    from swarmboot.errors import SwarmbootError

    raw = os.environ.get("SWARMBOOT_POLL_INTERVAL")
    if not raw:
        return 5.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.05 <= value <= 300:
        raise SwarmbootError(
            f"SWARMBOOT_POLL_INTERVAL={raw!r} is not a number of seconds from 0.05 to 300",
            hint="unset it for the default, 5",
        )
    return value


def make_context(
    spec_path: Path,
    api_url: str | None,
    ssh_key: Path | None,
    reporter: Reporter,
    *,
    timeout: float = 1200.0,
    need_key: bool = True,
    bootstrap: Bootstrap | None = None,
):
    """Every adapter `up` needs, for a spec checked by `preflight`.

    Without `need_key` (`plan`), finding no SSH key anywhere is not an error yet: the
    context then contacts no node and knows no mark (`NoMarks`), so observing a cluster that
    has a Linode stops with the error every other command gives at once, and a cluster not
    made yet is planned from the cloud alone. A key that is named or found but cannot be used
    is an error either way."""
    from swarmboot.cluster import Context, Settings
    from swarmboot.credentials import root_password, unlock_key
    from swarmboot.interfaces import new_generation
    from swarmboot.keys import NoIdentity, load_identity
    from swarmboot.marks import NoMarks, member_marks
    from swarmboot.preflight import (
        account_interfaces,
        check_catalogue,
        check_node_data,
        placement_warning,
        stackscript_for,
    )
    from swarmboot.remote import NoConnector, ParamikoConnector
    from swarmboot.routes import records_only, require_local_route
    from swarmboot.sim.admin import SimAdmin
    from swarmboot.spec import admin_keys, load_spec, with_bootstrap
    from swarmboot.swarm import DockerSwarm

    spec = load_spec(spec_path)
    if bootstrap is not None:
        spec = with_bootstrap(spec, bootstrap.value)  # type: ignore[arg-type]
    script = stackscript_for(spec, spec_path)
    keys = admin_keys(spec, spec_path.parent)
    check_node_data(spec, spec_path, script, keys)
    cloud = make_cloud(api_url)
    account = account_interfaces(spec, spec_path, cloud)
    facts = check_catalogue(spec, spec_path, cloud, new_generation(spec, account))
    catalogued = {
        "placement_unsupported": facts.placement_unsupported,
        "metadata_unsupported": facts.metadata_unsupported,
        "cloud_init_unsupported": facts.cloud_init_unsupported,
    }
    warning = placement_warning(facts.placement_unsupported)
    if warning:
        reporter.warn(warning)
    try:
        identity = load_identity(ssh_key)
    except NoIdentity as missing:
        if need_key:
            raise
        reporter.detail(
            f"API {cloud.target.api_url}, token from {cloud.target.source}, no SSH key found"
        )
        return Context(
            spec=spec,
            spec_path=spec_path,
            cloud=cloud,
            connector=NoConnector(),
            swarm=DockerSwarm(),
            reporter=reporter,
            script=script,
            identity_public="",
            marks=NoMarks(missing=missing),
            admin_keys=keys,
            **catalogued,
            account_interfaces=account,
        )
    reporter.detail(
        f"API {cloud.target.api_url}, token from {cloud.target.source}, "
        f"SSH key from {identity.source}"
    )
    # Against a simulator: none of a records-only one's addresses is ever contacted, and of a
    # lab's only those routed into this machine.
    guard = None
    if cloud.target.is_local:
        machines = SimAdmin(cloud.target.api_url, "").has_machines()
        guard = records_only if machines is False else require_local_route
    return Context(
        spec=spec,
        spec_path=spec_path,
        cloud=cloud,
        connector=ParamikoConnector(identity, guard=guard),
        swarm=DockerSwarm(),
        reporter=reporter,
        script=script,
        identity_public=identity.public_line,
        identity_source=identity.source,
        marks=member_marks(identity.pkey, identity.source),
        admin_keys=keys,
        settings=Settings(ready_timeout=timeout, poll_interval=_poll_interval()),
        root_password=root_password(),
        unlock_key=unlock_key(),
        **catalogued,
        account_interfaces=account,
    )


def make_cloud_context(
    spec_path: Path, api_url: str | None, ssh_key: Path | None, reporter: Reporter
):
    """A context for commands that only read and change the cloud (`down`, `adopt`): no node
    is ever contacted; the SSH identity only tells the cluster's Linodes by their marks."""
    from swarmboot.cluster import Context
    from swarmboot.keys import load_identity
    from swarmboot.marks import member_marks
    from swarmboot.preflight import stackscript_for
    from swarmboot.remote import NoConnector
    from swarmboot.spec import load_spec
    from swarmboot.swarm import DockerSwarm

    spec = load_spec(spec_path)
    cloud = make_cloud(api_url)
    identity = load_identity(ssh_key)
    reporter.detail(
        f"API {cloud.target.api_url}, token from {cloud.target.source}, "
        f"SSH key from {identity.source} (for the marks only)"
    )
    return Context(
        spec=spec,
        spec_path=spec_path,
        cloud=cloud,
        connector=NoConnector(),
        swarm=DockerSwarm(),
        reporter=reporter,
        script=stackscript_for(spec, spec_path),
        identity_public=identity.public_line,
        identity_source=identity.source,
        marks=member_marks(identity.pkey, identity.source),
    )
