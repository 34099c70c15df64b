"""What a spec must agree with before any command acts on it: a StackScript of this
project for its image, data for it (or user data, with cloud-init) that Linode takes, and
region, type and image names the API's catalogue has (and what its regions and image offer:
placement groups for the managers, the Metadata service and cloud-init for the user data)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from swarmboot.cloud import CloudApi, CloudError
from swarmboot.credentials import NoTokenError
from swarmboot.interfaces import (
    ACCOUNT_DEFAULTS,
    CAPABILITIES,
    LEGACY,
    LINODE,
    account_allows,
    new_generation,
)
from swarmboot.keys import new_host_key
from swarmboot.placement import CAPABILITY, wanted_groups
from swarmboot.plan import LocalScript
from swarmboot.publish import local_scripts
from swarmboot.spec import Spec, SpecError, check_against_catalog
from swarmboot.udf import MAX_DATA_CHARS, check_data, parse_udfs
from swarmboot.userdata import MAX_USER_DATA_BYTES, node_user_data

__all__ = [
    "CLOUD_INIT",
    "METADATA",
    "CatalogueFacts",
    "account_interfaces",
    "check_catalogue",
    "check_node_data",
    "node_data",
    "placement_warning",
    "stackscript_for",
]

# The capabilities metadata.user_data needs, as Linode's catalogue names them: the region's
# Metadata service and the image's cloud-init.
METADATA = "Metadata"
CLOUD_INIT = "cloud-init"


@dataclass(frozen=True)
class CatalogueFacts:
    """What the catalogue says the spec's regions and image lack (the plan decides)."""

    placement_unsupported: frozenset[str] = frozenset()  # no placement groups for managers
    metadata_unsupported: frozenset[str] = frozenset()  # regions without the Metadata service
    cloud_init_unsupported: frozenset[str] = frozenset()  # the image, if it lacks cloud-init


def node_data(
    spec: Spec, admin_keys: tuple[str, ...], label: str, role: str, region: str, host_key_b64: str
) -> dict[str, str]:
    """The StackScript data of one node (its private host key among it: a secret)."""
    return {
        "hostname": label,
        "cluster": spec.cluster.name,
        "swarm_role": role,
        "zone": region,
        "admin_ssh_keys": "\n".join(admin_keys),
        "docker_source": spec.cluster.docker_source,
        "ssh_host_key": host_key_b64,
        "apt_upgrade": "yes" if spec.cluster.apt_upgrade else "no",
    }


def check_node_data(
    spec: Spec, spec_path: Path, script: LocalScript, admin_keys: tuple[str, ...]
) -> None:
    """Every node's data fits the StackScript and Linode's 65,535 characters (with
    cloud-init: its user data, Linode's 65,535 bytes): found before anything is made, not at
    the first create (after a StackScript and two firewalls)."""
    udfs = parse_udfs(script.text, script.file)
    host_key = new_host_key()  # every node's is of this size
    cloud_init = spec.cluster.bootstrap == "cloud-init"
    for node in spec.nodes():
        data = node_data(spec, admin_keys, node.label, node.role, node.region, host_key.private_b64)
        problems = check_data(udfs, data)
        too_long = any(p.startswith("stackscript_data: ") for p in problems)
        problems = tuple(p for p in problems if not p.startswith("stackscript_data: "))
        if problems:
            raise SpecError([f"{spec_path}: {node.label}: {problems[0]}"])
        if cloud_init:
            size = len(node_user_data(script.cloud_config, data, host_key).encode())
            if size > MAX_USER_DATA_BYTES:
                raise SpecError(
                    [
                        f"{spec_path}: cluster.admin_ssh_keys: a node's cloud-init user data "
                        f"would be {size} bytes, Linode takes at most {MAX_USER_DATA_BYTES}; "
                        'give fewer admin keys, or use cluster.bootstrap = "stackscript"'
                    ]
                )
        elif too_long:
            size = len(json.dumps(data, separators=(",", ":")))
            raise SpecError(
                [
                    f"{spec_path}: cluster.admin_ssh_keys: a node's StackScript data would be "
                    f"{size} characters, Linode takes at most {MAX_DATA_CHARS}; give fewer "
                    "admin keys"
                ]
            )


def stackscript_for(spec: Spec, spec_path: Path) -> LocalScript:
    """The rendered StackScript the spec names, made for its image."""
    scripts = local_scripts()
    script = scripts.get(spec.cluster.stackscript)
    if script is None:
        raise SpecError(
            [
                f"{spec_path}: cluster.stackscript: no StackScript "
                f"{spec.cluster.stackscript!r}; choose one of "
                f"{', '.join(sorted(scripts))}"
            ]
        )
    if spec.cluster.image not in script.images:
        raise SpecError(
            [
                f"{spec_path}: cluster.image: {spec.cluster.stackscript} is for "
                f"{', '.join(script.images)}, not {spec.cluster.image}"
            ]
        )
    return script


def account_interfaces(spec: Spec, spec_path: Path, cloud: CloudApi) -> str | None:
    """The account's `interfaces_for_new_linodes`, read when `cluster.interfaces` is "auto"
    (which follows it) or "linode" (which it must allow); None for "legacy" (nothing is
    read: a token without access to the account's settings works as before), and for
    "linode" where the token may not read them (the first create then says)."""
    choice = spec.cluster.interfaces
    if choice == "legacy":
        return None
    try:
        setting = cloud.account_interfaces()
    except CloudError as exc:
        if exc.status not in (401, 403):
            raise
        if choice == "linode":
            return None
        raise NoTokenError(
            f"the Linode API would not show the account's settings (GET /account/settings: "
            f'{exc.status} {exc.reason}), which cluster.interfaces = "auto" follows',
            hint="give the token read access to the account, or set cluster.interfaces = "
            '"linode" or "legacy"',
        ) from None
    if setting not in ACCOUNT_DEFAULTS:
        # No such setting (or one not known here): Linode interfaces are not offered.
        setting = "legacy_config_only"
    generation = new_generation(spec, setting)
    if not account_allows(setting, generation):
        made = "Linodes with Linode interfaces" if generation == LEGACY else "legacy-config Linodes"
        raise SpecError(
            [
                f'{spec_path}: cluster.interfaces: "{choice}", but the account makes {made} '
                f"only (interfaces_for_new_linodes = {setting}); set cluster.interfaces = "
                f'"{"linode" if generation == LEGACY else "legacy"}" or "auto", or change the '
                "account's setting"
            ]
        )
    return setting


def check_catalogue(
    spec: Spec, spec_path: Path, cloud: CloudApi, generation: str = LEGACY
) -> CatalogueFacts:
    """Region, type and image names as the API knows them (not a list in the code), room
    for each region's managers in one placement group, and VPCs and Linode interfaces in
    each region where the Linodes made are to have them (`generation`). Returns what the
    spec's regions and image lack: placement groups where the managers would have one (the
    plan makes none there, and the caller says so), the Metadata service and cloud-init
    (which the plan requires when the bootstrap is cloud-init)."""
    regions, types, images = cloud.catalogue()
    check_against_catalog(spec, str(spec_path), regions, types, images)
    if generation == LINODE:
        lacking_vpcs = [
            f"{spec_path}: regions.{region}: Linode offers no {', '.join(missing)} in "
            f'{region}, which cluster.interfaces = "{spec.cluster.interfaces}" needs there; '
            'set cluster.interfaces = "legacy", or choose another region'
            for region in spec.regions
            if (missing := [c for c in CAPABILITIES if c not in regions[region].capabilities])
        ]
        if lacking_vpcs:
            raise SpecError(lacking_vpcs)
    lacking = frozenset(
        region for region in wanted_groups(spec) if CAPABILITY not in regions[region].capabilities
    )
    managers = spec.managers_by_region()
    problems = [
        f"{spec_path}: regions.{region}: {managers[region]} managers, but a placement group in "
        f"{region} holds at most {size} Linodes; spread the managers over more regions, or "
        'set cluster.manager_placement = "none"'
        for region in wanted_groups(spec, lacking)
        if (size := regions[region].placement_group_size) is not None and managers[region] > size
    ]
    if problems:
        raise SpecError(problems)
    image = spec.cluster.image
    return CatalogueFacts(
        placement_unsupported=lacking,
        metadata_unsupported=frozenset(
            region for region in spec.regions if METADATA not in regions[region].capabilities
        ),
        cloud_init_unsupported=frozenset(
            {image} - {i for i, c in images.items() if CLOUD_INIT in c}
        ),
    )


def placement_warning(lacking: frozenset[str]) -> str | None:
    """What a CLI command says once about regions whose managers get no placement group."""
    if not lacking:
        return None
    return (
        f"no placement group for the managers in {', '.join(sorted(lacking))}: Linode offers "
        "none there, so two of them may share a host"
    )
