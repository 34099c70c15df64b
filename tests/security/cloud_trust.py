"""Trust of cloud objects: what someone else on the account made first, through linode_api4,
holding the cluster's labels, tag or pin. The cluster is the one-manager spec (`solo`).

For each case, on an emptied records-only simulator: the objects are made, then `plan`, `up`
and `down --yes` run. Refused properly: `plan` and `up` answer as the case says (exit 4 where
swarmboot must refuse to go on; 0 and 6 where it goes on around the object: a records-only
simulator's nodes never join), and the object is never rewritten (label, tags, rules,
devices), never put behind the cluster's Cloud Firewalls, and still there after `down --yes`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from linode_api4 import LinodeClient

from .common import (
    CLI_TOKEN,
    NOT_REFUSED,
    ONE_MANAGER,
    REFUSED,
    CliWorld,
    Outcome,
    last_lines,
    shown,
)

CATEGORY = "trust"
TITLE = "trust of cloud objects (plan, up, down)"
TAG = "swarmboot:solo"
RULES = {
    "inbound": [
        {
            "label": "shop-https",
            "action": "ACCEPT",
            "protocol": "TCP",
            "ports": "443",
            "addresses": {"ipv4": ["0.0.0.0/0"]},
        }
    ],
    "inbound_policy": "DROP",
    "outbound_policy": "ACCEPT",
}
# Someone else's host key pin (as swarmboot writes one: "hk:" and a SHA256 fingerprint's 43
# characters), of a key swarmboot never made.
FOREIGN_PIN = "hk:" + base64.b64encode(hashlib.sha256(b"someone else's key").digest()).decode()[:43]


# The same cluster with Linode interfaces: a VPC in eu-central, `solo-eu-central`.
LINODE_INTERFACES = ONE_MANAGER.replace('name = "solo"\n', 'name = "solo"\ninterfaces = "linode"\n')


@dataclass(frozen=True)
class Made:
    linodes: tuple[int, ...] = ()
    firewalls: tuple[int, ...] = ()
    vpcs: tuple[int, ...] = ()


def _linode(client: LinodeClient, label: str, tags: list[str]) -> int:
    return client.linode.instance_create("g6-nanode-1", "eu-central", label=label, tags=tags).id


def _foreign_firewall(client: LinodeClient, world: CliWorld) -> Made:
    other = _linode(client, "shop-web-1", ["shop"])
    firewall = client.networking.firewall_create("solo-nodes", rules=RULES)
    firewall.device_create(other)
    return Made((other,), (firewall.id,))


def _tagged(label: str, *extra: str) -> Callable[[LinodeClient, CliWorld], Made]:
    def make(client: LinodeClient, world: CliWorld) -> Made:
        return Made((_linode(client, label, [TAG, *extra]),))

    return make


def _untagged_node_label(client: LinodeClient, world: CliWorld) -> Made:
    return Made((_linode(client, "solo-eu-central-manager-1", ["shop"]),))


def _copied_mark(client: LinodeClient, world: CliWorld) -> Made:
    """The cluster is up; someone copies its manager's tags (tag, pin, mark) onto a Linode of
    their own under a node label the spec does not use."""
    world.invoke(["up", str(world.dir / "trust" / "solo.toml"), "--timeout", "1"])
    ours = next(i for i in client.linode.instances() if i.label == "solo-eu-central-manager-1")
    return Made((_linode(client, "solo-eu-central-manager-3", list(ours.tags)),))


def _in_vpc(client: LinodeClient, subnet_id: int) -> dict:
    """Someone else's Linode, with one interface: in that VPC subnet."""
    return client.post(
        "/linode/instances",
        data={
            "label": "shop-web-1",
            "region": "eu-central",
            "type": "g6-nanode-1",
            "interface_generation": "linode",
            "interfaces": [{"vpc": {"subnet_id": subnet_id}}],
        },
    )


def _foreign_vpc(client: LinodeClient, world: CliWorld) -> Made:
    """A VPC under the label of the cluster's in eu-central, with its tag but not its mark,
    another's Linode in it."""
    vpc = client.post(
        "/vpcs",
        data={
            "label": "solo-eu-central",
            "region": "eu-central",
            "description": f"{TAG} sbm:notthemarkofthisidentity",
            "subnets": [{"label": "nodes", "ipv4": "192.168.64.0/24"}],
        },
    )
    other = _in_vpc(client, vpc["subnets"][0]["id"])
    return Made((other["id"],), (), (vpc["id"],))


def _stranger_in_vpc(client: LinodeClient, world: CliWorld) -> Made:
    """The cluster is up with Linode interfaces; someone puts a Linode of their own into its
    VPC (anyone on the account may)."""
    world.invoke(["up", str(world.dir / "trust" / "solo-linode.toml"), "--timeout", "1"])
    vpc = next(v for v in client.get("/vpcs")["data"] if v["label"] == "solo-eu-central")
    other = _in_vpc(client, vpc["subnets"][0]["id"])
    return Made((other["id"],))


@dataclass(frozen=True)
class TrustCase:
    id: str
    what: str
    make: Callable[[LinodeClient, CliWorld], Made]
    plan: frozenset[int]  # what `plan` must answer
    up: frozenset[int]  # and `up`
    # and `down --yes`: 1 where it says which Linodes under node labels it left (not marked)
    down: frozenset[int] = frozenset({0})
    spec: str = "solo.toml"  # the spec file: solo.toml, or solo-linode.toml (Linode interfaces)


REFUSE, GO_ON, LEFT_NAMED = frozenset({4}), frozenset({0}), frozenset({0, 1})
CASES = [
    TrustCase(
        "foreign-firewall",
        "an untagged firewall named like the cluster's, another's Linode behind it",
        _foreign_firewall,
        REFUSE,
        REFUSE,
    ),
    TrustCase(
        "tagged-non-node-label",
        "a Linode with the cluster's tag and a label swarmboot never gives",
        _tagged("solo-backdoor"),
        GO_ON,
        frozenset({6}),
    ),
    TrustCase(
        "tagged-leading-zero",
        "a Linode with the cluster's tag and a node-like label with a leading zero",
        _tagged("solo-eu-central-manager-01"),
        GO_ON,
        frozenset({6}),
    ),
    TrustCase(
        "untagged-node-label",
        "a Linode with a node label the spec wants, without the tag",
        _untagged_node_label,
        REFUSE,
        REFUSE,
    ),
    TrustCase(
        "made-in-advance-pinned",
        "a Linode made in advance with the tag, the node label and its own hk: pin",
        _tagged("solo-eu-central-manager-1", FOREIGN_PIN),
        REFUSE,
        REFUSE,
        LEFT_NAMED,
    ),
    TrustCase(
        "surplus-label-pinned",
        "a Linode with the tag, a node label past the spec's count and its own hk: pin",
        _tagged("solo-eu-central-manager-3", FOREIGN_PIN),
        GO_ON,
        frozenset({6}),
        LEFT_NAMED,
    ),
    TrustCase(
        "copied-mark",
        "a Linode with a copy of a member's tags (tag, pin, mark) under another node label",
        _copied_mark,
        GO_ON,
        frozenset({0, 6}),
        LEFT_NAMED,
    ),
    TrustCase(
        "foreign-vpc",
        "a VPC under the label of the cluster's, with its tag but not its mark, another's "
        "Linode in it",
        _foreign_vpc,
        REFUSE,
        REFUSE,
        spec="solo-linode.toml",
    ),
    TrustCase(
        "stranger-in-vpc",
        "another's Linode put into the cluster's VPC",
        _stranger_in_vpc,
        GO_ON,
        frozenset({0, 6}),
        spec="solo-linode.toml",
    ),
]


def _state(client: LinodeClient, made: Made) -> dict:
    """The watched objects as the API shows them, and the cluster's firewalls' devices."""
    linodes = {i["id"]: i for i in client.get("/linode/instances")["data"]}
    firewalls = {f["id"]: f for f in client.get("/networking/firewalls")["data"]}
    devices = {
        fid: sorted(
            d["entity"]["id"] for d in client.get(f"/networking/firewalls/{fid}/devices")["data"]
        )
        for fid in firewalls
    }
    vpcs = {v["id"]: v for v in client.get("/vpcs")["data"]}
    return {
        "linodes": {
            i: {k: linodes[i][k] for k in ("label", "tags")} if i in linodes else None
            for i in made.linodes
        },
        "vpcs": {
            v: {k: vpcs[v][k] for k in ("label", "description", "subnets")} if v in vpcs else None
            for v in made.vpcs
        },
        "firewalls": {
            f: {
                "label": firewalls[f]["label"],
                "tags": firewalls[f]["tags"],
                "rules": client.get(f"/networking/firewalls/{f}/rules")["inbound"],
                "devices": devices[f],
            }
            if f in firewalls
            else None
            for f in made.firewalls
        },
        "behind_ours": sorted(
            i
            for f, fw in firewalls.items()
            if TAG in fw["tags"]
            for i in devices[f]
            if i in made.linodes
        ),
        # Of the watched Linodes, those with a Linode interface behind one of the cluster's
        # firewalls (by the firewall's entities: each interface with its Linode).
        "interfaces_behind_ours": {
            e["parent_entity"]["id"]: True
            for fw in firewalls.values()
            if TAG in fw["tags"]
            for e in fw["entities"]
            if e["type"] == "linode_interface" and e["parent_entity"]["id"] in made.linodes
        },
    }


def _check(case: TrustCase, world: CliWorld, client: LinodeClient, spec: str) -> tuple[str, str]:
    world.reset()
    made = case.make(client, world)
    before = _state(client, made)
    steps = [("plan", ["plan", spec], case.plan), ("up", ["up", spec, "--timeout", "1"], case.up)]
    steps.append(("down --yes", ["down", spec, "--yes"], case.down))
    for name, args, expected in steps:
        args = [a.replace("solo.toml", case.spec) for a in args]
        ran = world.invoke(args)
        if ran.traceback or ran.exit_code not in expected:
            want = "/".join(map(str, sorted(expected)))
            return NOT_REFUSED, (
                f"`{name}` exit {ran.exit_code} (expected {want}): {shown(ran.output)}"
                + (f"\ntraceback: {last_lines(ran.traceback)}" if ran.traceback else "")
            )
        now = _state(client, made)
        if now["behind_ours"]:
            return (
                NOT_REFUSED,
                f"after `{name}`: Linodes {now['behind_ours']} are behind the cluster's firewalls",
            )
        theirs = [i for i in made.linodes if now["interfaces_behind_ours"].get(i)]
        if theirs:
            return (
                NOT_REFUSED,
                f"after `{name}`: interfaces of Linodes {theirs} are behind the cluster's "
                "firewalls",
            )
        changed = {
            kind: {
                k: (before[kind][k], now[kind][k])
                for k in before[kind]
                if before[kind][k] != now[kind][k]
            }
            for kind in ("linodes", "firewalls", "vpcs")
        }
        changed = {k: v for k, v in changed.items() if v}
        if changed:
            said = f"after `{name}` (exit {ran.exit_code}): {json.dumps(changed)}"
            return NOT_REFUSED, f"{said}\n{shown(ran.output)}"
    return REFUSED, ""


def run(world: CliWorld) -> list[Outcome]:
    where = world.dir / "trust"
    where.mkdir(parents=True)
    spec = where / "solo.toml"
    spec.write_text(ONE_MANAGER)
    (where / "solo-linode.toml").write_text(LINODE_INTERFACES)
    client = LinodeClient(CLI_TOKEN, base_url=world.url)
    out = []
    for case in CASES:
        verdict, detail = _check(case, world, client, str(spec))
        out.append(Outcome(CATEGORY, case.id, case.what, verdict, detail))
    world.reset()
    return out
