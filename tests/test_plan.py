"""The planning core, from the cases in tests/plan_cases/: observed world + spec -> steps.

A case describes the world per node in a few words (the node exists, its status, kernel,
status report, swarm membership, firewall member set); the builder below turns that into the
`Observed` the planner sees. Expected steps are their own descriptions, so a case reads like
the output of `swarmboot plan`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from swarmboot.firewall import cloud_firewall_labels, cloud_rules
from swarmboot.interfaces import vpc_label
from swarmboot.membership import cluster_addresses
from swarmboot.nodestatus import NodeStatus
from swarmboot.placement import PLACEMENT_TYPE, wanted_groups
from swarmboot.plan import (
    LocalScript,
    PlanError,
    node_labels,
    plan,
    step_data,
)
from swarmboot.raft import RaftStatus
from swarmboot.spec import Spec, load_spec, parse_spec, with_bootstrap
from swarmboot.state import (
    CloudFirewall,
    Instance,
    LocalSwarm,
    Observed,
    PlacementGroup,
    PlacementMember,
    PublishedScript,
    SwarmNode,
    SwarmState,
    Vpc,
    VpcSubnet,
)

from .conftest import REPO

CASES = sorted((Path(__file__).parent / "plan_cases").glob("*.json"))
SCRIPT = LocalScript(
    "debian12-swarm-node.sh", "#!/bin/bash\necho node\n", ("linode/debian12",), "node"
)
DEFAULT = {
    "exists": True,
    "status": "running",
    "kernel": "linode/grub2",
    "report": "ok",
    "swarm": "ready",
    "members": "current",
    "labels": "current",
    "rebuild": "none",  # "marked": a rebuild decided, "rebuilt": and its new disk is there
    "upgrade": None,  # its upgrade mark, as `swarmboot upgrade` tags it ("upgrade:77:p:out")
    # The node's own view of the swarm, when it is not a ready member: "inactive", "pending",
    # "error" (its join ended in error), "foreign" (active in a swarm of its own), "member"
    # (active, and its entry in the swarm is there but not ready).
    "local": "inactive",
    # Its interfaces: "legacy" (its config profile's) or "linode" (Linode interfaces, a
    # public one and one in its region's VPC); None: the world's "interfaces".
    "interfaces": None,
    # With Linode interfaces, where they are behind the firewall: "current" (both behind
    # its own), "public-off" (its public one behind none), "wrong" (both behind the other).
    "firewall": "current",
}


# What a node's ESP probe says when it fails (templates/partials/probes.sh.j2).
ESP_ERRORS = {
    "esp-missing": "the kernel refused an IPsec ESP state: RTNETLINK answers: Function not "
    "implemented",
    "esp-blocked": "esp4/esp6 are disabled by modprobe configuration "
    "(/etc/modprobe.d/disable-esp.conf: install esp4 /bin/false), as a kernel vulnerability "
    "mitigation does",
}


def report(label: str, node, kind: str) -> NodeStatus | None:
    if kind == "none":
        return None
    return NodeStatus(
        phase="failed" if kind == "failed" else "done",
        script=SCRIPT.file,
        hostname=label,
        cluster="c",
        role=node.role,
        zone=node.region,
        kernel_release="6.1.0-56-amd64",
        distro_kernel=kind != "wrong-kernel",
        reboot_required=kind == "wrong-kernel",
        vxlan_ok=True,
        esp_ok=kind not in ("esp-missing", "esp-blocked"),
        esp_error=ESP_ERRORS.get(kind),
        docker_ok=True,
        firewall_ok=True,
        error="vxlan probe failed" if kind == "failed" else None,
    )


def build(spec: Spec, world: dict) -> Observed:
    per_node = world.get("nodes", {})
    nodes = spec.nodes()
    settings = {
        n.label: {**DEFAULT, **per_node.get("default", {}), **per_node.get(n.label, {})}
        for n in nodes
    }
    instances = []
    generation = world.get("interfaces", "legacy")
    for n, node in enumerate(nodes, start=1):
        s = settings[node.label]
        if not s["exists"]:
            continue
        linode = (s["interfaces"] or generation) == "linode"
        instances.append(
            Instance(
                id=1000 + n,
                label=node.label,
                region=node.region,
                type=node.type,
                status=s["status"],
                tags=(spec.tag,)
                + (("rebuild:500",) if s["rebuild"] != "none" else ())
                + ((s["upgrade"],) if s["upgrade"] else ()),
                ipv4_public=f"198.51.100.{n + 1}",
                ipv4_private=None,
                image="linode/debian12",
                config=(2000 + n, s["kernel"]) if s["kernel"] else None,
                interface_generation="linode" if linode else "legacy_config",
                # Its VPC interface is 5000 + n, its public one 6000 + n.
                vpc_interface_id=5000 + n if linode else None,
                ipv4_vpc=f"192.168.64.{n + 1}" if linode else None,
            )
        )
    # Linodes of the cluster that the spec no longer has (a lowered count): running members.
    surplus = world.get("surplus", [])
    for n, label in enumerate(surplus, start=1):
        instances.append(
            Instance(
                id=1100 + n,
                label=label,
                region=label.split("-")[1] if "eu-central" not in label else "eu-central",
                type="g6-standard-2",
                status="running",
                tags=(spec.tag,),
                ipv4_public=f"198.51.100.{100 + n}",
                ipv4_private=None,
            )
        )
    existing = {i.label: i for i in instances}
    addresses = cluster_addresses(nodes, existing)
    reports = {}
    members = {}
    for node in nodes:
        s = settings[node.label]
        if not s["exists"]:
            continue
        r = report(node.label, node, s["report"])
        if r is not None:
            reports[node.label] = r
        if s["members"] == "current" and addresses is not None:
            members[node.label] = addresses
    swarm = None
    if world.get("swarm", True):
        entries = []
        for n, node in enumerate(nodes, start=1):
            s = settings[node.label]
            labels = node_labels(spec, node) if s["labels"] == "current" else ()
            role = "manager" if node.role == "manager" else "worker"
            if s["swarm"] == "worker-not-manager":
                role = "worker"
            if s["swarm"] in ("ready", "down-twin", "worker-not-manager"):
                entries.append(
                    SwarmNode(
                        f"id{n}",
                        node.label,
                        role,
                        "ready",
                        "active",
                        f"198.51.100.{n + 1}",
                        labels,
                        n == 1,
                        "reachable" if role == "manager" else "",
                    )
                )
            # "forced-out": a manager's entry that a forced new cluster left behind: Down,
            # without a manager status (not in raft any more); "unknown": not heard from
            # since a new leader took over.
            if s["swarm"] in ("down", "down-twin", "forced-out", "unknown"):
                reachability = "unreachable" if s["swarm"] != "forced-out" else ""
                entries.append(
                    SwarmNode(
                        f"old{n}",
                        node.label,
                        role,
                        "unknown" if s["swarm"] == "unknown" else "down",
                        "active",
                        f"198.51.100.{n + 1}",
                        labels,
                        reachability=reachability if role == "manager" else "",
                    )
                )
        for n, label in enumerate(surplus, start=1):
            role = "manager" if "-manager-" in label else "worker"
            entries.append(
                SwarmNode(f"sur{n}", label, role, "ready", "active", f"198.51.100.{100 + n}")
            )
        network = world.get("network", "encrypted" if spec.encrypted else "plain")
        networks = () if network == "absent" else ((spec.network_name, network == "encrypted"),)
        heartbeat = world.get("heartbeat", spec.cluster.heartbeat)
        swarm = SwarmState(nodes[0].label, tuple(entries), networks, heartbeat)
    scripts = {
        "current": (PublishedScript(7, SCRIPT.label, SCRIPT.rev, SCRIPT.images),),
        "stale": (PublishedScript(7, SCRIPT.label, "old", SCRIPT.images),),
        "absent": (),
    }[world.get("script", "current")]
    firewalls = []
    # "current", "stale-rules" (the spec's rules changed since, say firewall.ssh_from) or absent.
    # While a node is still to be made, "current" holds the addresses of those there are.
    kind = world.get("firewalls", "current")
    known = addresses or tuple(sorted(a for i in instances for a in (i.ipv4_public,) if a))
    if kind in ("current", "stale-rules"):
        for n, (label, lb) in enumerate(cloud_firewall_labels(spec).items()):
            rules = cloud_rules(spec, known, lb=lb)
            key = rules.key() if kind == "current" else rules.key()[1:]
            ids = tuple(
                i.id
                for i in instances
                if ("-lb-" in i.label) == lb and i.interface_generation == "legacy_config"
            )
            firewalls.append(
                CloudFirewall(
                    n,
                    label,
                    "DROP",
                    key,
                    ids,
                    (spec.tag,),
                    interfaces_behind(instances, settings, lb),
                )
            )
    strangers = tuple(
        Instance(9000 + n, label, "eu-central", "g6-nanode-1", "running", (), "203.0.113.9", None)
        for n, label in enumerate(world.get("strangers", []))
    )
    for inst in instances[len(instances) - len(surplus) :]:
        if addresses is not None:
            members[inst.label] = addresses
    unsupported = frozenset(world.get("placement_unsupported", ()))
    groups, instances = placement(spec, world.get("placement", "current"), instances, unsupported)
    rebuilt = frozenset(label for label, s in settings.items() if s["rebuild"] == "rebuilt")
    ready = {e.hostname for e in swarm.nodes if e.state == "ready"} if swarm else set()
    local = {}
    for n, node in enumerate(nodes, start=1):
        s = settings[node.label]
        if not s["exists"] or node.label not in reports or node.label in ready:
            continue
        kind = s["local"]
        # "manager": it manages the swarm by its own view (with no leader, or left out of
        # raft by a forced new cluster); "locked": the same, locked by autolock.
        state = {"foreign": "active", "member": "active", "manager": "active"}.get(kind, kind)
        node_id = {"foreign": f"elsewhere{n}", "member": f"old{n}", "manager": f"old{n}"}.get(
            kind, ""
        )
        local[node.label] = LocalSwarm(node_id, state, kind in ("manager", "locked"))
    # How far each managing node's raft log goes (read by `recover` when no manager leads).
    raft = {
        node.label: RaftStatus(s["raft"], s["raft"], 1)
        for node in nodes
        if "raft" in (s := settings[node.label])
    }
    vpcs, foreign = vpcs_of(spec, world.get("vpcs", "current"), instances)
    return Observed(
        tuple(instances),
        strangers,
        scripts,
        tuple(firewalls),
        swarm,
        reports,
        members,
        rebuilt=rebuilt,
        local=local,
        raft=raft,
        placement_groups=groups,
        placement_unsupported=unsupported,
        vpcs=vpcs,
        foreign_vpcs=foreign,
        account_interfaces=world.get("account"),
        metadata_unsupported=frozenset(world.get("metadata_unsupported", ())),
        cloud_init_unsupported=frozenset(world.get("cloud_init_unsupported", ())),
    )


def interfaces_behind(
    instances: list[Instance], settings: dict, lb: bool
) -> tuple[tuple[int, int], ...]:
    """The Linode interfaces behind the nodes' (or with `lb` the load balancers') firewall,
    as each node's "firewall" setting has them."""
    found = []
    for inst in instances:
        if inst.vpc_interface_id is None:
            continue
        public = inst.vpc_interface_id + 1000
        kind = settings.get(inst.label, DEFAULT)["firewall"]
        own = ("-lb-" in inst.label) == lb
        if (own and kind != "wrong") or (not own and kind == "wrong"):
            found.append((inst.id, inst.vpc_interface_id))
            if kind != "public-off":
                found.append((inst.id, public))
    return tuple(sorted(found))


def vpcs_of(
    spec: Spec, kind: str, instances: list[Instance]
) -> tuple[tuple[Vpc, ...], tuple[tuple[Vpc, str], ...]]:
    """The VPCs of the spec's regions, as `kind` says: "current" (each with its subnet and
    its region's Linodes with Linode interfaces; none if no Linode has them), "absent",
    "no-subnet" (each without its subnet), "other-range" (each subnet of another range),
    "foreign" (each under the cluster's label, without its mark)."""
    regions = sorted({n.region for n in spec.nodes()})
    if kind == "absent" or (
        kind == "current" and not any(i.interface_generation == "linode" for i in instances)
    ):
        return (), ()
    made = []
    for n, region in enumerate(regions):
        ids = tuple(i.id for i in instances if i.region == region and i.ipv4_vpc)
        ipv4 = "192.168.96.0/24" if kind == "other-range" else spec.network.vpc_subnet
        subnets = () if kind == "no-subnet" else (VpcSubnet(4000 + n, "nodes", ipv4, ids),)
        made.append(Vpc(3000 + n, vpc_label(spec, region), region, "", subnets))
    if kind == "foreign":
        return (), tuple((v, "its description lacks the tag and the mark") for v in made)
    return tuple(made), ()


def placement(
    spec: Spec, kind: str, instances: list[Instance], unsupported: frozenset[str]
) -> tuple[tuple[PlacementGroup, ...], list[Instance]]:
    """The managers' placement groups the spec wants, as `kind` says: "current" (each holds
    its region's existing managers), "absent" (none: a cluster made before the groups),
    "empty" (each exists, the managers outside it), "foreign" (each also holds a Linode that
    is not the cluster's), "flexible" (current, but of the policy flexible), "elsewhere" (the
    managers are in some other group). The instances come back with their group's id."""
    if kind == "absent":
        return (), instances
    groups = []
    placed: dict[str, int] = {}
    for n, (region, label) in enumerate(sorted(wanted_groups(spec, unsupported).items())):
        group_id = 300 + n
        managers = [i for i in instances if i.region == region and "-manager-" in i.label]
        inside = [] if kind in ("empty", "elsewhere") else managers
        ids = [i.id for i in inside] + ([9999] if kind == "foreign" else [])
        policy = "flexible" if kind == "flexible" else spec.cluster.manager_placement
        members = tuple(PlacementMember(i, True) for i in ids)
        groups.append(
            PlacementGroup(group_id, label, region, PLACEMENT_TYPE, policy, True, members)
        )
        placed.update({i.label: group_id for i in inside})
        if kind == "elsewhere":
            placed.update({i.label: 400 for i in managers})
    return tuple(groups), [
        replace(i, placement_group_id=placed[i.label]) if i.label in placed else i
        for i in instances
    ]


def load_case_spec(case: dict) -> Spec:
    """The case's spec: a file of the repository or the text of one, with `spec_set`'s
    settings ({"cluster.interfaces": "linode"}) changed in it, and "bootstrap" as
    `--bootstrap` sets it over the spec's cluster.bootstrap."""
    spec = load_spec(REPO / case["spec_file"]) if "spec_file" in case else parse_spec(case["spec"])
    for key, value in case.get("spec_set", {}).items():
        table, name = key.split(".")
        part = getattr(spec, table).model_copy(update={name: value})
        spec = spec.model_copy(update={table: part})
    return with_bootstrap(spec, case["bootstrap"]) if "bootstrap" in case else spec


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_plan_case(path):
    case = json.loads(path.read_text())
    spec = load_case_spec(case)
    observed = build(spec, case["observed"])
    prune = case.get("prune", False)
    if "error" in case:
        with pytest.raises(PlanError) as info:
            plan(spec, observed, SCRIPT, prune=prune)
        assert str(info.value).startswith(case["error"]), str(info.value)
        return
    steps = plan(spec, observed, SCRIPT, prune=prune)
    assert [s.describe() for s in steps] == case["steps"]
    # What a step carries for its runner, where the case names it: {"step": type, "label":
    # label, field: value, ...}; lists in JSON stand for tuples.
    for want in case.get("step_fields", []):
        found = [
            s
            for s in steps
            if type(s).__name__ == want["step"]
            and want["label"] in (getattr(s, "label", None), *getattr(s, "labels", ()))
        ]
        assert len(found) == 1, want
        for name, value in want.items():
            if name not in ("step", "label"):
                got = getattr(found[0], name)
                assert got == (tuple(value) if isinstance(value, list) else value), name


def test_plans_are_data():
    spec = load_spec(REPO / "examples" / "itframe.toml")
    first = plan(spec, Observed(), SCRIPT)
    assert first == plan(spec, Observed(), SCRIPT)  # frozen, comparable, no closures
    assert len(set(first)) == len(first)  # hashable, no step twice


def test_plan_json_carries_each_steps_fields():
    import json

    spec = load_spec(REPO / "examples" / "itframe.toml")
    case = json.loads(
        (Path(__file__).parent / "plan_cases/21-surplus-kept-firewall-sync.json").read_text()
    )
    steps = plan(spec, build(spec, case["observed"]), SCRIPT)
    data = json.loads(json.dumps([step_data(s) for s in steps]))
    nodes = data[0]
    assert nodes["step"] == "SyncCloudFirewall"
    assert nodes["description"] == steps[0].describe()
    assert nodes["fields"]["linode_ids"] == [1001, 1002, 1003, 1006, 1007, 1008, 1009, 1101]
    assert "itframe-gb-lon-worker-3" in nodes["fields"]["devices"]
    ssh = nodes["fields"]["rules"]["inbound"][0]
    assert ssh == {
        "label": "ssh",
        "protocol": "TCP",
        "ipv4": ["0.0.0.0/0"],
        "ipv6": ["::/0"],
        "ports": "22",
    }


def test_managers_that_answer_without_a_readable_swarm_are_one_clear_error_not_a_new_swarm():
    from dataclasses import replace

    from swarmboot.errors import SwarmbootError

    spec = load_spec(REPO / "examples" / "itframe.toml")
    observed = build(spec, {"swarm": False})
    manager = spec.nodes()[0].label
    observed = replace(observed, local={manager: LocalSwarm("id1", "active", True)})
    with pytest.raises(SwarmbootError) as info:
        plan(spec, observed, SCRIPT)
    assert str(info.value).startswith(
        f"{manager} manage a swarm whose state cannot be read (no leader"
    )
    # Without that view, the same world is a swarm to make.
    assert "InitSwarm" in {
        type(s).__name__ for s in plan(spec, build(spec, {"swarm": False}), SCRIPT)
    }
