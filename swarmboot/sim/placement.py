"""Placement groups: which Linodes belong together, on which hosts they run, and whether
that meets the group's type.

The simulator has no physical machines, but every Linode has a host: its `host_uuid`. A
Linode is created onto a host of its own, unless the `shared_host` fault puts it onto its
region's one crowded host; the admin API (`/_sim/hosts/share`, `/_sim/hosts/separate`) moves
existing Linodes, as Linode's own maintenance moves can. Compliance is worked out from the
hosts whenever a group is shown. A host always has room: capacity is not modelled, so a
strict group refuses a Linode only when the Linode is on a member's host already.

These are the account's records and their rules, nothing of HTTP. Each function is called
with the simulator's lock held (the routes and the instance calls hold it) and raises the
API's errors (`ApiError`) for what the real API refuses.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from swarmboot.sim import catalog
from swarmboot.sim.errors import ApiError, Problem, bad_request, not_found
from swarmboot.sim.inputs import Body
from swarmboot.sim.model import Instance, PlacementGroup, World

__all__ = [
    "AVAILABLE_TYPES",
    "CAPABILITY",
    "POLICIES",
    "TYPES",
    "admit",
    "assign",
    "compliance",
    "create_group",
    "delete_group",
    "group",
    "group_api",
    "group_for_new_linode",
    "hosts",
    "linode_api",
    "members",
    "own_host",
    "separate_hosts",
    "share_host",
    "shared_host",
    "unassign",
    "update_group",
]

# The types whose rules are known: anti-affinity spreads members over hosts, affinity keeps
# them on one. Linode takes only anti-affinity today (the spec's enum and its note
# "Currently, only anti_affinity:local is available"; Akamai's placement-group guide).
TYPES = ("anti_affinity:local", "affinity:local")
AVAILABLE_TYPES = ("anti_affinity:local",)
POLICIES = ("strict", "flexible")
# The region capability that placement groups need (as the real API and linode_api4 spell it).
CAPABILITY = "Placement Group"

# A letter or digit at each end; letters, digits, -, _ and . between.
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")  # fullmatch: no trailing \n
_GROUP_FIELDS = frozenset({"label", "region", "placement_group_type", "placement_group_policy"})
# `compliant_only` is not in the spec's bodies, but linode_api4 sends it (a known difference).
_ASSIGN_FIELDS = frozenset({"linodes", "compliant_only"})
_JOIN_FIELDS = frozenset({"id", "compliant_only"})


# --- hosts --------------------------------------------------------------------------------


def own_host(linode_id: int) -> str:
    """The host a Linode is created onto: one of its own."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"swarmboot-sim/{linode_id}"))


def shared_host(region: str) -> str:
    """The region's crowded host, where the `shared_host` fault puts Linodes."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"swarmboot-sim/{region}/shared-host"))


def hosts(world: World) -> dict[str, str]:
    """Each Linode's host, by Linode id."""
    return {str(i.id): i.host_uuid for i in world.instances.values()}


def _linodes(world: World, raw: Any, allowed: frozenset[str]) -> tuple[list[Instance], Body]:
    body = Body(raw, allowed)
    ids = list(dict.fromkeys(body.ints("linodes")))
    if not ids:
        raise bad_request("linodes is required", "linodes")
    found = []
    for iid in ids:
        inst = world.instances.get(iid)
        if inst is None:
            raise bad_request(f"Linode {iid} not found", "linodes")
        found.append(inst)
    return found, body


def share_host(world: World, raw: Any) -> dict[str, str]:
    """`{"linodes": [a, b, ...]}`: the Linodes move onto the first one's host."""
    linodes, _ = _linodes(world, raw, frozenset({"linodes"}))
    first = linodes[0]
    for inst in linodes[1:]:
        if inst.region != first.region:
            raise bad_request(
                f"Linode {inst.label} is in {inst.region}, not in {first.region}: "
                "hosts are within a region",
                "linodes",
            )
    for inst in linodes[1:]:
        inst.host_uuid = first.host_uuid
    return hosts(world)


def separate_hosts(world: World, raw: Any) -> dict[str, str]:
    """`{"linodes": [...]}`: each Linode moves back onto a host of its own."""
    linodes, _ = _linodes(world, raw, frozenset({"linodes"}))
    for inst in linodes:
        inst.host_uuid = own_host(inst.id)
    return hosts(world)


# --- compliance ---------------------------------------------------------------------------


def compliance(kind: str, placed: Sequence[tuple[int, str]]) -> dict[int, bool]:
    """Which members, given as (Linode id, host), meet the group's type. Anti-affinity: a
    member is compliant when no other member is on its host. Affinity: when it is on the host
    most members share (the earliest member's, on a tie)."""
    counts = Counter(host for _, host in placed)
    if kind == "affinity:local":
        if not placed:
            return {}
        most = max(counts.values())
        home = next(host for _, host in placed if counts[host] == most)
        return {iid: host == home for iid, host in placed}
    return {iid: counts[host] == 1 for iid, host in placed}


def members(world: World, pg: PlacementGroup) -> list[Instance]:
    """The group's Linodes, oldest first."""
    return sorted(
        (i for i in world.instances.values() if i.placement_group_id == pg.id),
        key=lambda i: i.id,
    )


def group_api(world: World, pg: PlacementGroup, *, migrations: bool = False) -> dict[str, Any]:
    """The group as the API shows it. Only the spec's GET answers carry `migrations` (empty:
    the simulator never migrates); its answers to changes have no such field."""
    placed = [(i.id, i.host_uuid) for i in members(world, pg)]
    verdicts = compliance(pg.placement_group_type, placed)
    out = pg.to_api([{"linode_id": iid, "is_compliant": verdicts[iid]} for iid, _ in placed])
    if migrations:
        out["migrations"] = {}
    return out


def linode_api(world: World, inst: Instance) -> dict[str, Any]:
    """A Linode as the API shows it, with its placement group."""
    pg = world.placement_groups.get(inst.placement_group_id or 0)
    return inst.to_api(pg)


# --- groups -------------------------------------------------------------------------------


def group(world: World, group_id: int) -> PlacementGroup:
    pg = world.placement_groups.get(group_id)
    if pg is None:
        raise not_found()
    return pg


def _limits(region: str) -> Mapping[str, int | None]:
    return (catalog.region(region) or {}).get("placement_group_limits") or {}


def _label(world: World, value: Any, own_id: int | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise bad_request("label is required", "label")
    if not _LABEL.fullmatch(value):
        raise bad_request(
            "Label must begin and end with a letter or digit and may only contain letters, "
            "digits, dashes, underscores and periods",
            "label",
        )
    if any(g.label == value and g.id != own_id for g in world.placement_groups.values()):
        raise bad_request("Label must be unique among your placement groups", "label")
    return value


def create_group(world: World, raw: Any) -> PlacementGroup:
    body = Body(raw, _GROUP_FIELDS)
    label = _label(world, body.str("label", required=True))
    region = body.str("region", required=True) or ""
    found = catalog.region(region)
    if found is None:
        raise bad_request(f"Region {region} not found", "region")
    if CAPABILITY not in found["capabilities"]:
        raise bad_request(f"Region {region} does not support placement groups", "region")
    kind = body.str("placement_group_type", required=True)
    if kind not in AVAILABLE_TYPES:
        reason = f"Must be one of {', '.join(AVAILABLE_TYPES)}"
        if kind in TYPES:
            reason = f"{kind} is not available; only {', '.join(AVAILABLE_TYPES)} is"
        raise bad_request(reason, "placement_group_type")
    policy = body.str("placement_group_policy", required=True)
    if policy not in POLICIES:
        raise bad_request(f"Must be one of {', '.join(POLICIES)}", "placement_group_policy")
    most = _limits(region).get("maximum_pgs_per_customer")
    held = sum(g.region == region for g in world.placement_groups.values())
    if most is not None and held >= most:
        raise bad_request(f"You may have at most {most} placement groups in {region}", "region")
    pg = PlacementGroup(
        id=world.new_id("placement_group"),
        label=label,
        region=region,
        placement_group_type=kind,
        placement_group_policy=policy,
    )
    world.placement_groups[pg.id] = pg
    return pg


def update_group(world: World, group_id: int, raw: Any) -> PlacementGroup:
    body = Body(raw, frozenset({"label"}))
    pg = group(world, group_id)
    if "label" in body:
        pg.label = _label(world, body.raw["label"], own_id=pg.id)
    return pg


def delete_group(world: World, group_id: int) -> None:
    """As the API documents it: a group is deleted only once its Linodes are unassigned (so
    never while it is non-compliant, since an empty group is compliant)."""
    pg = group(world, group_id)
    if members(world, pg):
        raise ApiError(
            400,
            (
                Problem(
                    f"Placement group {pg.label} still has Linodes assigned; "
                    "unassign them before deleting it"
                ),
            ),
        )
    del world.placement_groups[group_id]


# --- membership ---------------------------------------------------------------------------


def admit(
    world: World,
    pg: PlacementGroup,
    newcomers: Sequence[tuple[Instance | None, int, str]],
    *,
    compliant_only: bool,
    field: str,
) -> None:
    """Refuse Linodes, given as (record or None for one being created, id, host), that the
    group cannot take: beyond the region's `maximum_linodes_per_pg`, or, for a strict group
    (or a request with `compliant_only`), any that would not be compliant once in it."""
    current = members(world, pg)
    most = _limits(pg.region).get("maximum_linodes_per_pg")
    if most is not None and len(current) + len(newcomers) > most:
        raise bad_request(
            f"Placement group {pg.label} has room for {most} Linodes; it has {len(current)}",
            field,
        )
    if pg.placement_group_policy != "strict" and not compliant_only:
        return
    verdicts = compliance(
        pg.placement_group_type,
        [(i.id, i.host_uuid) for i in current] + [(iid, host) for _, iid, host in newcomers],
    )
    for inst, iid, _ in newcomers:
        if not verdicts[iid]:
            name = f"Linode {inst.label}" if inst is not None else "The new Linode"
            raise bad_request(
                f"{name} cannot be placed in placement group {pg.label} without breaking "
                f"its {pg.placement_group_type} placement",
                field,
            )


def group_for_new_linode(
    world: World, raw: Any, region: str, linode_id: int, host: str
) -> PlacementGroup:
    """The group a Linode being created joins (`placement_group` of the create): it must be
    in the Linode's region and able to take it on the host it is created onto."""
    body = Body(raw, _JOIN_FIELDS)
    group_id = body.int("id")
    if group_id is None:
        raise bad_request("placement_group.id is required", "placement_group.id")
    pg = world.placement_groups.get(group_id)
    if pg is None:
        raise bad_request(f"Placement group {group_id} not found", "placement_group.id")
    if pg.region != region:
        raise bad_request(
            f"Placement group {pg.label} is in {pg.region}; the Linode must be in the same region",
            "placement_group",
        )
    admit(
        world,
        pg,
        [(None, linode_id, host)],
        compliant_only=bool(body.bool("compliant_only", default=False)),
        field="placement_group",
    )
    return pg


def assign(world: World, group_id: int, raw: Any) -> PlacementGroup:
    """`{"linodes": [...]}`: all of them join, or none does."""
    pg = group(world, group_id)
    linodes, body = _linodes(world, raw, _ASSIGN_FIELDS)
    for inst in linodes:
        if inst.placement_group_id is not None:
            other = world.placement_groups.get(inst.placement_group_id)
            raise bad_request(
                f"Linode {inst.label} is already in placement group "
                f"{other.label if other else inst.placement_group_id}",
                "linodes",
            )
        if inst.region != pg.region:
            raise bad_request(
                f"Linode {inst.label} is in {inst.region}, not in the placement group's "
                f"region {pg.region}",
                "linodes",
            )
    admit(
        world,
        pg,
        [(i, i.id, i.host_uuid) for i in linodes],
        compliant_only=bool(body.bool("compliant_only", default=False)),
        field="linodes",
    )
    for inst in linodes:
        inst.placement_group_id = pg.id
    return pg


def unassign(world: World, group_id: int, raw: Any) -> PlacementGroup:
    """`{"linodes": [...]}`: all of them leave (each must be a member), or none does."""
    pg = group(world, group_id)
    linodes, _ = _linodes(world, raw, frozenset({"linodes"}))
    for inst in linodes:
        if inst.placement_group_id != pg.id:
            raise bad_request(
                f"Linode {inst.label} is not in placement group {pg.label}", "linodes"
            )
    for inst in linodes:
        inst.placement_group_id = None
    return pg
