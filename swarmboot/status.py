"""A cluster's state, node by node, as rows for a table or JSON. Pure."""

from __future__ import annotations

from typing import Any

from swarmboot.certs import certificate_warnings, expiry
from swarmboot.interfaces import LEGACY, SUBNET_LABEL, new_generation, wanted_vpcs
from swarmboot.lb import endpoints
from swarmboot.membership import node_roles, not_members, surplus
from swarmboot.placement import cluster_groups, group_label, wanted_groups
from swarmboot.readiness import status_problems
from swarmboot.spec import Spec
from swarmboot.state import Observed
from swarmboot.upgrade import upgrade_mark

__all__ = ["placement_rows", "status_rows", "summary", "vpc_rows"]


def status_rows(spec: Spec, observed: Observed) -> list[dict[str, Any]]:
    """One row per node of the spec, then one per Linode of the cluster the spec no longer
    has (kept until `up --prune`)."""
    rows = []
    extra = surplus(spec, observed)
    roles = node_roles(spec, extra)
    wanted = [(n.label, n.region, n.role, True) for n in spec.nodes()]
    for label, region, role, in_spec in wanted + [
        (i.label, i.region, roles[i.label], False) for i in reversed(extra)
    ]:
        inst = observed.instance(label)
        report = observed.reports.get(label)
        entry = observed.swarm.node(label) if observed.swarm else None
        status = inst.status if inst else "missing"
        if inst and inst.rebuild_since is not None:
            status += ", rebuilding"
        mark = upgrade_mark(inst.tags) if inst else None
        if mark is not None and mark.state != "done":
            status += f", {'out for its upgrade' if mark.state == 'out' else 'upgraded'}"
        if not in_spec:
            status += ", not in the spec"
        rows.append(
            {
                "node": label,
                "region": region,
                "role": role,
                "in_spec": in_spec,
                "rebuilding": bool(inst and inst.rebuild_since is not None),
                # Its upgrade mark ("upgrade:<run>:<mode>:<state>"), None if it has none.
                "upgrade": mark.tag if mark else None,
                "linode": status,
                "id": inst.id if inst else None,
                "ipv4": inst.ipv4_public if inst else None,
                "private_ipv4": inst.ipv4_private if inst else None,
                "interfaces": inst.interface_generation if inst else None,
                "vpc_ipv4": inst.ipv4_vpc if inst else None,
                "kernel": report.kernel_release if report else None,
                "distro_kernel": report.distro_kernel if report else None,
                "vxlan": report.vxlan_ok if report else None,
                "esp": report.esp_ok if report else None,
                "docker": report.docker_version if report else None,
                "stackscript": report.phase if report else None,
                "problems": list(status_problems(spec, report)) if report else [],
                "swarm": (
                    f"{entry.role}, {entry.state}"
                    if entry
                    else ("not joined" if observed.swarm else "no swarm")
                ),
                "labels": dict(entry.labels) if entry else {},
                # Its swarm certificate's expiry (read by `status`: None otherwise).
                **expiry(observed, label),
            }
        )
    return rows


def placement_rows(spec: Spec, observed: Observed) -> list[dict[str, Any]]:
    """One row per region whose managers have (or should have) a placement group: the
    group, its policy, its compliance ("compliant", "not compliant", "missing", or
    "unsupported" where Linode offers no groups), its members and those that share a host,
    and the spec's managers there that are not in it."""
    names = {i.id: i.label for i in observed.instances}
    groups = {g.region: g for g in cluster_groups(spec, observed)}
    wanted = wanted_groups(spec, observed.placement_unsupported)
    lacking = set(wanted_groups(spec)) - set(wanted)
    rows = []
    for region in sorted(set(wanted) | set(groups) | lacking):
        group = groups.get(region)
        placed = sorted(
            ((names.get(m.linode_id, str(m.linode_id)), m.compliant) for m in group.members)
            if group
            else ()
        )
        members = [name for name, _ in placed]
        managers = [
            n.label
            for n in spec.nodes()
            if n.role == "manager" and n.region == region and observed.instance(n.label)
        ]
        if region in lacking:
            state = "unsupported"
        elif group is None:
            state = "missing"
        else:
            state = "compliant" if group.compliant else "not compliant"
        rows.append(
            {
                "region": region,
                "group": group.label if group else group_label(spec, region),
                "policy": group.policy if group else spec.cluster.manager_placement,
                "state": state,
                "members": members,
                "sharing_a_host": [name for name, compliant in placed if not compliant],
                "outside": [label for label in managers if label not in members]
                if region in wanted
                else [],
            }
        )
    return rows


def vpc_rows(spec: Spec, observed: Observed) -> list[dict[str, Any]]:
    """One row per region whose nodes have (or should have) a VPC: its label, its subnet,
    its state ("present", "missing", or "no subnet"), and the cluster's nodes in it."""
    wanted = wanted_vpcs(spec, _new_interfaces(spec, observed) or LEGACY)
    mine = {v.region: v for v in observed.vpcs}
    names = {i.id: i.label for i in observed.instances}
    rows = []
    for region in sorted(set(wanted) | set(mine)):
        vpc = mine.get(region)
        subnet = vpc.subnet(SUBNET_LABEL) if vpc else None
        rows.append(
            {
                "region": region,
                "vpc": vpc.label if vpc else wanted[region],
                "subnet": subnet.ipv4 if subnet else spec.network.vpc_subnet,
                "state": "missing" if vpc is None else ("present" if subnet else "no subnet"),
                "nodes": sorted(
                    names[i] for i in (subnet.linode_ids if subnet else ()) if i in names
                ),
            }
        )
    return rows


def summary(spec: Spec, observed: Observed) -> dict[str, Any]:
    swarm = observed.swarm
    return {
        "cluster": spec.cluster.name,
        "regions": sorted(spec.regions),
        "network": {
            "name": spec.network_name,
            "encrypted": spec.encrypted,
            "exists": bool(swarm and spec.network_name in dict(swarm.networks)),
        },
        "managers": sum(
            1 for n in (swarm.nodes if swarm else ()) if n.role == "manager" and n.state == "ready"
        ),
        "nodes": status_rows(spec, observed),
        # Each zone's load balancer endpoints (the lb nodes' own addresses), with [lb].
        "lb": endpoints(spec, observed),
        # The managers' placement group in each region that has one (or should).
        "placement": placement_rows(spec, observed),
        # What holds the cluster's labels or tag without being its own (not members).
        "not_members": list(not_members(spec, observed)),
        # The interfaces the Linodes swarmboot makes get ("legacy_config" or "linode"; each
        # node's own are in its row), and each region's VPC where they are Linode ones.
        "interfaces": _new_interfaces(spec, observed),
        "vpcs": vpc_rows(spec, observed),
        # Certificates that expire soon, or nodes down longer than a certificate lives.
        "warnings": certificate_warnings(observed),
    }


def _new_interfaces(spec: Spec, observed: Observed) -> str | None:
    """The generation of the Linodes swarmboot makes; None where "auto" was not resolved."""
    if spec.cluster.interfaces == "auto" and observed.account_interfaces is None:
        return None
    return new_generation(spec, observed.account_interfaces)
