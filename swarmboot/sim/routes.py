"""The API's paths: what each method and path does, and which collections page and filter."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from swarmboot.sim import (
    account,
    catalog,
    disks,
    firewall_templates,
    instances,
    interfaces,
    ips,
    ipv6,
    placement,
    profiles,
    resources,
    vpcs,
)
from swarmboot.sim.engine import Simulator
from swarmboot.sim.errors import bad_request, not_found
from swarmboot.sim.model import Instance, PlacementGroup
from swarmboot.sim.query import paginate, parse_filter, parse_paging, run_query

__all__ = ["FILTERABLE", "ROUTES", "Request", "Response", "Route", "match"]

# Fields marked filterable in Linode's spec, per collection (checked against the spec by tests).
FILTERABLE: dict[str, frozenset[str]] = {
    "/regions": frozenset({"country", "site-type"}),
    "/linode/types": frozenset(
        {"class", "disk", "gpus", "label", "memory", "network_out", "transfer", "vcpus"}
    ),
    "/linode/kernels": frozenset(
        {"architecture", "deprecated", "kvm", "label", "pvops", "version"}
    ),
    "/images": frozenset(
        {"deprecated", "is_public", "label", "size", "status", "tags", "type", "vendor"}
    ),
    "/linode/instances": frozenset(
        {
            "group",
            "id",
            "ipv4",
            "label",
            "placement_group.label",
            "placement_group.placement_group_type",
            "region",
            "tags",
        }
    ),
    "/linode/instances/{linodeId}/configs": frozenset({"label"}),
    "/linode/instances/{linodeId}/disks": frozenset({"label", "size"}),
    "/linode/instances/{linodeId}/firewalls": frozenset(
        {"created", "id", "label", "tags", "updated"}
    ),
    "/linode/stackscripts": frozenset(
        {"deployments_total", "description", "is_public", "label", "mine", "rev_note"}
    ),
    "/networking/firewalls": frozenset({"created", "id", "label", "tags", "updated"}),
    "/networking/firewalls/{firewallId}/devices": frozenset({"created", "id", "updated"}),
    "/placement/groups": frozenset({"label", "placement_group_type", "region"}),
    "/account/events": frozenset({"action", "created", "entity.id", "entity.type", "id", "read"}),
    "/linode/instances/{linodeId}/interfaces/{interfaceId}/firewalls": frozenset(
        {"created", "id", "label", "tags", "updated"}
    ),
    "/vpcs": frozenset({"created", "id", "label", "region", "updated"}),
    "/vpcs/ips": frozenset({"active", "config_id", "linode_id", "region", "vpc_id"}),
    "/vpcs/{vpcId}/ips": frozenset({"active", "config_id", "linode_id", "region", "vpc_id"}),
    "/vpcs/ipv6s": frozenset({"active", "config_id", "linode_id", "region", "vpc_id"}),
    "/vpcs/{vpcId}/ipv6s": frozenset({"active", "config_id", "linode_id", "region", "vpc_id"}),
    "/vpcs/{vpcId}/subnets": frozenset({"created", "id", "label", "updated"}),
    "/tags": frozenset(),
    "/tags/{tagLabel}": frozenset(),
    "/networking/vlans": frozenset({"label", "region"}),
    "/networking/ips": frozenset({"address", "prefix", "rdns", "region", "type"}),
    "/networking/ipv6/ranges": frozenset(),
    "/networking/ipv6/pools": frozenset({"region"}),
    "/networking/firewalls/templates": frozenset(),
    "/account/notifications": frozenset(),
    "/regions/availability": frozenset({"available", "plan", "region"}),
    "/regions/vpc-availability": frozenset({"region"}),
    "/profile/sshkeys": frozenset(),
}
# Filters the real API takes beyond the spec's marks: tags by label, as Linode's own
# JavaScript client (@linode/api-v4) asks for them (docs/simulator.md, `tags-label-filter`).
EXTRA_FILTERS: dict[str, frozenset[str]] = {
    "/tags": frozenset({"label"}),
    # 4.229.1 marks `vpc_type` filterable, where 4.189.0 has no such field.
    "/vpcs": frozenset({"vpc_type"}),
    "/vpcs/{vpcId}/subnets": frozenset({"vpc_type"}),
}

# The products refused on purpose that have an OAuth scope of their own (linode_api4's
# OAuthScopes names them), by the paths they live under. The simulator's token is a
# personal access token without those scopes, and the real API answers such a token `401`
# with NOT_AUTHORIZED on every path of theirs, before looking at anything else
# (docs/simulator.md, "Scope").
UNSCOPED: tuple[tuple[str, str], ...] = (
    ("/lke", "lke"),
    ("/volumes", "volumes"),
    ("/object-storage", "object_storage"),
    ("/databases", "databases"),
    ("/nodebalancers", "nodebalancers"),
    ("/domains", "domains"),
    ("/longview", "longview"),
    ("/support", "tickets"),
    ("/account/users", "users"),
    ("/account/oauth-clients", "clients"),
    ("/profile/tokens", "tokens"),
    ("/profile/apps", "tokens"),
)
NOT_AUTHORIZED = "Your OAuth token is not authorized to use this endpoint."
# The scopes of the simulator's token (the real API's X-OAuth-Scopes header): those of what
# it serves, none of UNSCOPED's.
TOKEN_SCOPES = " ".join(
    f"{scope}:read_write"
    for scope in (
        "account",
        "events",
        "firewall",
        "images",
        "ips",
        "linodes",
        "stackscripts",
        "vpc",
    )
)


def unscoped(path: str) -> str | None:
    """The OAuth scope a path below /v4 needs that the simulator's token lacks, if any."""
    return next((s for p, s in UNSCOPED if path == p or path.startswith(p + "/")), None)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any
    args: Mapping[str, str] = field(default_factory=dict)

    def id(self, name: str) -> int:
        try:
            return int(self.args[name])
        except ValueError:
            raise not_found() from None


@dataclass(frozen=True)
class Response:
    body: Any
    status: int = 200


Handler = Callable[[Simulator, Request], Any]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler
    pattern: re.Pattern[str]

    @property
    def collection(self) -> bool:
        return self.method == "GET" and self.template in FILTERABLE


def _listing(template: str, items: Callable[[Simulator, Request], list[dict[str, Any]]]) -> Handler:
    filterable = FILTERABLE[template] | EXTRA_FILTERS.get(template, frozenset())

    def handler(sim: Simulator, request: Request) -> Any:
        query = parse_filter(request.headers.get("x-filter"), filterable)
        page, page_size = parse_paging(request.params)
        return paginate(run_query(items(sim, request), query), page, page_size)

    return handler


def _static(rows: tuple[dict[str, Any], ...]) -> Callable[[Simulator, Request], list]:
    return lambda sim, request: [dict(r) for r in rows]


def _one(lookup: Callable[..., dict[str, Any] | None], arg: str, withheld: bool = False) -> Handler:
    def handler(sim: Simulator, request: Request) -> Any:
        found = lookup(request.args[arg], *((sim.config.withheld,) if withheld else ()))
        if found is None:
            raise not_found()
        return dict(found)

    return handler


def _locked(fn: Callable[[Simulator, Request], Any]) -> Handler:
    def handler(sim: Simulator, request: Request) -> Any:
        with sim.lock:
            return fn(sim, request)

    return handler


def _changing(fn: Callable[[Simulator, Request], Any]) -> Handler:
    """A change to records that logs no event: it is saved with the state all the same."""

    def handler(sim: Simulator, request: Request) -> Any:
        with sim.lock:
            answer = fn(sim, request)
            sim.mark_dirty()
            return answer

    return handler


def _instance(sim: Simulator, request: Request) -> Any:
    return sim.instance(request.id("linodeId"))


def _linode(sim: Simulator, inst: Instance) -> dict[str, Any]:
    return placement.linode_api(sim.world, inst)


def _group(sim: Simulator, request: Request) -> PlacementGroup:
    return placement.group(sim.world, request.id("groupId"))


def _group_api(sim: Simulator, group: PlacementGroup) -> dict[str, Any]:
    return placement.group_api(sim.world, group)


def _config(sim: Simulator, request: Request) -> Any:
    config = _instance(sim, request).configs.get(request.id("configId"))
    if config is None:
        raise not_found()
    return config.to_api()


def _disk(sim: Simulator, request: Request) -> Any:
    disk = _instance(sim, request).disks.get(request.id("diskId"))
    if disk is None:
        raise not_found()
    return disk.to_api(sim.clock())


def _script(sim: Simulator, request: Request) -> Any:
    script_id = request.id("stackscriptId")
    script = sim.world.stackscripts.get(script_id) or resources.public_stackscript(script_id)
    if script is None:
        raise not_found()
    return script.to_api()


def _firewall(sim: Simulator, request: Request) -> Any:
    fw = sim.world.firewalls.get(request.id("firewallId"))
    if fw is None:
        raise not_found()
    return fw


def _rule_version(sim: Simulator, request: Request) -> Any:
    """One version of a firewall's rules (those of a firewall made before the simulator
    kept versions: only the current one)."""
    fw, version = _firewall(sim, request), request.id("version")
    found = next((v for v in fw.history if v["rules"]["version"] == version), None)
    if found is None and version == fw.version:
        return fw.rules_api()
    if found is None:
        raise not_found()
    return dict(found["rules"])


def _device(sim: Simulator, request: Request) -> Any:
    device = _firewall(sim, request).devices.get(request.id("deviceId"))
    if device is None:
        raise not_found()
    return device.to_api()


def _event(sim: Simulator, request: Request) -> Any:
    event = sim.world.events.get(request.id("eventId"))
    if event is None:
        raise not_found()
    return event.to_api(sim.clock())


def _events(sim: Simulator, request: Request) -> list[dict[str, Any]]:
    # Newest first, as the API lists them.
    now = sim.clock()
    return [e.to_api(now) for e in sorted(sim.world.events.values(), key=lambda e: -e.id)]


def _vpc(sim: Simulator, request: Request) -> dict[str, Any]:
    return vpcs.vpc_api(sim.world, vpcs.vpc(sim.world, request.id("vpcId")))


def _public_ranges(sim: Simulator) -> list[str]:
    """The regions' public IPv4 ranges: no VPC may use them."""
    return [
        str(sim.addresses.public_network(r["id"]))
        for r in catalog.REGIONS
        if sim.addresses.has_public_range(r["id"])
    ]


def _forbidden(sim: Simulator) -> list[str]:
    return vpcs.default_ranges(_public_ranges(sim))["forbidden_ipv4_ranges"]


def _subnet(sim: Simulator, request: Request) -> dict[str, Any]:
    sub = vpcs.subnet(sim.world, request.id("vpcId"), request.id("vpcSubnetId"))
    return vpcs.subnet_api(sim.world, sub)


def _interface(sim: Simulator, request: Request) -> dict[str, Any]:
    inst = _instance(sim, request)
    iface = interfaces.interface(inst, request.id("interfaceId"))  # a legacy Linode has none
    return interfaces.interface_api(sim.world, inst, iface)


def _interface_firewalls(sim: Simulator, request: Request) -> list[dict[str, Any]]:
    iface = interfaces.interface(_instance(sim, request), request.id("interfaceId"))
    found = sim.world.firewalls.get(iface.firewall_id or 0)
    return [found.to_api()] if found is not None else []


def _interfaces(sim: Simulator, request: Request) -> dict[str, Any]:
    inst = _instance(sim, request)
    if inst.interface_generation != "linode":
        interfaces.settings_api(inst)  # refused as the API refuses it
    return {
        "interfaces": [
            interfaces.interface_api(sim.world, inst, i) for i in inst.interfaces.values()
        ]
    }


def _new_interface(sim: Simulator, request: Request) -> dict[str, Any]:
    inst = _instance(sim, request)
    made = interfaces.create(sim.world, inst, request.body, sim.now(), book=sim.addresses)
    return interfaces.interface_api(sim.world, inst, made)


def _changed_interface(sim: Simulator, request: Request) -> dict[str, Any]:
    inst = _instance(sim, request)
    iface = interfaces.update(
        sim.world, inst, request.id("interfaceId"), request.body, sim.now(), book=sim.addresses
    )
    return interfaces.interface_api(sim.world, inst, iface)


def _profile(sim: Simulator, request: Request) -> tuple[Instance, Any]:
    inst = _instance(sim, request)
    return inst, profiles.config(inst, request.id("configId"))


def _config_interface(sim: Simulator, request: Request) -> dict[str, Any]:
    inst, cfg = _profile(sim, request)
    return profiles.interface_api(inst, profiles.interface(cfg, request.id("interfaceId")))


def _new_config_interface(sim: Simulator, request: Request) -> dict[str, Any]:
    inst, cfg = _profile(sim, request)
    return profiles.interface_api(inst, profiles.add_interface(sim.world, inst, cfg, request.body))


def _changed_config_interface(sim: Simulator, request: Request) -> dict[str, Any]:
    inst, cfg = _profile(sim, request)
    iface = profiles.update_interface(sim.world, inst, cfg, request.id("interfaceId"), request.body)
    return profiles.interface_api(inst, iface)


def _new_config(sim: Simulator, request: Request) -> dict[str, Any]:
    inst = _instance(sim, request)
    cfg = profiles.new_config(sim.world, inst, request.body)
    sim.event("linode_config_create", sim.linode_entity(inst), "notification")
    return cfg.to_api()


def _gone_config(sim: Simulator, request: Request) -> None:
    inst, cfg = _profile(sim, request)
    if inst.status not in ("running", "offline"):
        raise instances.busy(inst)
    del inst.configs[cfg.id]
    sim.event("linode_config_delete", sim.linode_entity(inst), "notification")


def _disk_event(sim: Simulator, request: Request, action: str, made: Any) -> dict[str, Any]:
    sim.event(action, sim.linode_entity(_instance(sim, request)), "notification")
    return made.to_api(sim.clock())


def _region_rows(sim: Simulator, request: Request, rows: Any) -> Any:
    """A region's plan availability (`rows` "plans"), or its VPC availability (None)."""
    region = catalog.region(request.args["regionId"], sim.config.withheld)
    if region is None:
        raise not_found()
    return catalog.plan_availability(region) if rows else catalog.vpc_availability(region)


def ips_linode(body: Any) -> int:
    """The `linode_id` of POST /networking/ips (a 400 naming it when missing)."""
    linode_id = body.get("linode_id") if isinstance(body, dict) else None
    if not isinstance(linode_id, int) or isinstance(linode_id, bool):
        raise bad_request("linode_id is required", "linode_id")
    return linode_id


def _owned_address(sim: Simulator, request: Request) -> tuple[Instance, str]:
    """The Linode of the path and one of its addresses (404 for another's)."""
    inst = _instance(sim, request)
    owner, address = ips.find(sim.world, request.args["address"])
    if owner.id != inst.id:
        raise not_found()
    return inst, address


def _allocated(
    sim: Simulator,
    inst: Instance,
    body: Any,
    fields: tuple[str, ...],
    linode_field: str | None = None,
) -> Any:
    address = ips.allocate(sim.world, sim.addresses, inst, body, fields, linode_field)
    sim.event("linode_addip", sim.linode_entity(inst), "notification")
    return ips.address_api(sim.addresses, inst, address)


def _empty(fn: Callable[[Simulator, Request], Any]) -> Handler:
    def handler(sim: Simulator, request: Request) -> Any:
        fn(sim, request)
        return {}

    return handler


_TABLE: list[tuple[str, str, Handler]] = [
    ("GET", "/regions", _listing("/regions", lambda sim, r: catalog.regions(sim.config.withheld))),
    ("GET", "/regions/{regionId}", _one(catalog.region, "regionId", withheld=True)),
    # Plan availability: every plan in every region (linode-cli's suite reads a region from
    # the list, so the real API lists some; linodego's one recording of it is empty).
    (
        "GET",
        "/regions/availability",
        _listing(
            "/regions/availability",
            lambda sim, r: [
                row
                for region in catalog.regions(sim.config.withheld)
                for row in catalog.plan_availability(region)
            ],
        ),
    ),
    (
        "GET",
        "/regions/{regionId}/availability",
        lambda sim, r: _region_rows(sim, r, "plans"),
    ),
    (
        "GET",
        "/regions/vpc-availability",
        _listing(
            "/regions/vpc-availability",
            lambda sim, r: [
                catalog.vpc_availability(g) for g in catalog.regions(sim.config.withheld)
            ],
        ),
    ),
    (
        "GET",
        "/regions/{regionId}/vpc-availability",
        lambda sim, r: _region_rows(sim, r, None),
    ),
    ("GET", "/account/notifications", _listing("/account/notifications", lambda sim, r: [])),
    (
        "GET",
        "/networking/firewalls/templates",
        _listing("/networking/firewalls/templates", lambda sim, r: firewall_templates.templates()),
    ),
    (
        "GET",
        "/networking/firewalls/templates/{slug}",
        lambda sim, r: firewall_templates.template(r.args["slug"]),
    ),
    (
        "GET",
        "/networking/firewalls/settings",
        _locked(lambda sim, r: firewall_templates.settings(sim.world)),
    ),
    (
        "PUT",
        "/networking/firewalls/settings",
        _changing(lambda sim, r: firewall_templates.update_settings(sim.world, r.body)),
    ),
    ("GET", "/linode/types", _listing("/linode/types", _static(catalog.TYPES))),
    ("GET", "/linode/types/{typeId}", _one(catalog.type_, "typeId")),
    ("GET", "/linode/kernels", _listing("/linode/kernels", _static(catalog.KERNELS))),
    ("GET", "/linode/kernels/{kernelId}", _one(catalog.kernel, "kernelId")),
    ("GET", "/images", _listing("/images", lambda sim, r: catalog.images(sim.config.withheld))),
    ("GET", "/images/{imageId}", _one(catalog.image, "imageId", withheld=True)),
    ("GET", "/profile", lambda sim, r: resources.profile(sim)),
    ("GET", "/account", lambda sim, r: resources.account(sim)),
    ("GET", "/account/settings", _locked(lambda sim, r: dict(sim.world.settings))),
    (
        "PUT",
        "/account/settings",
        _changing(lambda sim, r: interfaces.update_account_settings(sim.world, r.body)),
    ),
    (
        "GET",
        "/linode/instances",
        _listing(
            "/linode/instances",
            _locked(lambda sim, r: [_linode(sim, i) for i in sim.world.instances.values()]),
        ),
    ),
    (
        "POST",
        "/linode/instances",
        _locked(lambda sim, r: _linode(sim, instances.create(sim, r.body))),
    ),
    (
        "GET",
        "/linode/instances/{linodeId}",
        _locked(lambda sim, r: _linode(sim, _instance(sim, r))),
    ),
    (
        "PUT",
        "/linode/instances/{linodeId}",
        _locked(lambda sim, r: _linode(sim, instances.update(sim, r.id("linodeId"), r.body))),
    ),
    (
        "DELETE",
        "/linode/instances/{linodeId}",
        _empty(lambda sim, r: instances.delete(sim, r.id("linodeId"))),
    ),
    (
        "POST",
        "/linode/instances/{linodeId}/boot",
        _empty(lambda sim, r: instances.boot(sim, r.id("linodeId"), r.body)),
    ),
    (
        "POST",
        "/linode/instances/{linodeId}/reboot",
        _empty(lambda sim, r: instances.reboot(sim, r.id("linodeId"), r.body)),
    ),
    (
        "POST",
        "/linode/instances/{linodeId}/shutdown",
        _empty(lambda sim, r: instances.shutdown(sim, r.id("linodeId"))),
    ),
    (
        "POST",
        "/linode/instances/{linodeId}/rebuild",
        _locked(lambda sim, r: _linode(sim, instances.rebuild(sim, r.id("linodeId"), r.body))),
    ),
    (
        "GET",
        "/linode/instances/{linodeId}/ips",
        lambda sim, r: instances.ips(sim, r.id("linodeId")),
    ),
    (
        "GET",
        "/linode/instances/{linodeId}/configs",
        _listing(
            "/linode/instances/{linodeId}/configs",
            _locked(lambda sim, r: [c.to_api() for c in _instance(sim, r).configs.values()]),
        ),
    ),
    ("GET", "/linode/instances/{linodeId}/configs/{configId}", _locked(_config)),
    ("POST", "/linode/instances/{linodeId}/configs", _changing(_new_config)),
    ("DELETE", "/linode/instances/{linodeId}/configs/{configId}", _empty(_changing(_gone_config))),
    (
        "GET",
        "/linode/instances/{linodeId}/configs/{configId}/interfaces",
        _locked(
            lambda sim, r: [
                profiles.interface_api(_profile(sim, r)[0], i)
                for i in _profile(sim, r)[1].interfaces
            ]
        ),
    ),
    (
        "POST",
        "/linode/instances/{linodeId}/configs/{configId}/interfaces",
        _changing(_new_config_interface),
    ),
    (
        "GET",
        "/linode/instances/{linodeId}/configs/{configId}/interfaces/{interfaceId}",
        _locked(_config_interface),
    ),
    (
        "PUT",
        "/linode/instances/{linodeId}/configs/{configId}/interfaces/{interfaceId}",
        _changing(_changed_config_interface),
    ),
    (
        "DELETE",
        "/linode/instances/{linodeId}/configs/{configId}/interfaces/{interfaceId}",
        _empty(
            _changing(
                lambda sim, r: profiles.remove_interface(_profile(sim, r)[1], r.id("interfaceId"))
            )
        ),
    ),
    (
        "POST",
        "/linode/instances/{linodeId}/configs/{configId}/interfaces/order",
        _empty(_changing(lambda sim, r: profiles.order_interfaces(_profile(sim, r)[1], r.body))),
    ),
    (
        "GET",
        "/networking/ips",
        _listing(
            "/networking/ips", _locked(lambda sim, r: ips.all_addresses(sim.world, sim.addresses))
        ),
    ),
    (
        "POST",
        "/networking/ips",
        _changing(
            lambda sim, r: _allocated(
                sim,
                sim.instance(ips_linode(r.body)),
                {k: v for k, v in (r.body or {}).items() if k != "linode_id"}
                if isinstance(r.body, dict)
                else r.body,
                (),
                "linode_id",
            )
        ),
    ),
    (
        "GET",
        "/networking/ips/{address}",
        _locked(
            lambda sim, r: ips.address_api(
                sim.addresses, *ips.find(sim.world, r.args["address"]), sim.world
            )
        ),
    ),
    (
        "PUT",
        "/networking/ips/{address}",
        _changing(
            lambda sim, r: ips.set_rdns(
                sim.addresses, *ips.find(sim.world, r.args["address"]), r.body
            )
        ),
    ),
    (
        "POST",
        "/networking/ips/share",
        _empty(_changing(lambda sim, r: ips.share(sim.world, r.body))),
    ),
    (
        "GET",
        "/networking/ipv6/ranges",
        _listing("/networking/ipv6/ranges", _locked(lambda sim, r: ipv6.list_api(sim.world))),
    ),
    (
        "POST",
        "/networking/ipv6/ranges",
        _changing(lambda sim, r: ipv6.create(sim.world, sim.addresses, r.body)),
    ),
    (
        "GET",
        "/networking/ipv6/ranges/{range}",
        _locked(lambda sim, r: ipv6.one_api(sim.world, r.args["range"])),
    ),
    (
        "DELETE",
        "/networking/ipv6/ranges/{range}",
        _empty(_changing(lambda sim, r: ipv6.delete(sim.world, r.args["range"]))),
    ),
    # IPv6 pools (routed to all of an account's Linodes in a region) are a thing of the
    # past that a new account does not have (linode_api4 marks them deprecated): none.
    ("GET", "/networking/ipv6/pools", _listing("/networking/ipv6/pools", _static(()))),
    (
        "POST",
        "/linode/instances/{linodeId}/ips",
        _changing(lambda sim, r: _allocated(sim, _instance(sim, r), r.body, ())),
    ),
    (
        "GET",
        "/linode/instances/{linodeId}/ips/{address}",
        _locked(lambda sim, r: ips.address_api(sim.addresses, *_owned_address(sim, r), sim.world)),
    ),
    (
        "PUT",
        "/linode/instances/{linodeId}/ips/{address}",
        _changing(lambda sim, r: ips.set_rdns(sim.addresses, *_owned_address(sim, r), r.body)),
    ),
    (
        "DELETE",
        "/linode/instances/{linodeId}/ips/{address}",
        _empty(
            _changing(lambda sim, r: ips.remove(sim.world, sim.addresses, *_owned_address(sim, r)))
        ),
    ),
    (
        "DELETE",
        "/networking/vlans/{regionId}/{label}",
        _empty(
            _changing(
                lambda sim, r: profiles.delete_vlan(sim.world, r.args["regionId"], r.args["label"])
            )
        ),
    ),
    (
        "GET",
        "/networking/vlans",
        _listing("/networking/vlans", _locked(lambda sim, r: profiles.vlans(sim.world))),
    ),
    (
        "POST",
        "/linode/instances/{linodeId}/disks",
        _changing(
            lambda sim, r: _disk_event(
                sim,
                r,
                "disk_create",
                disks.create(
                    sim.world,
                    _instance(sim, r),
                    r.body,
                    sim.now(),
                    sim.clock() + sim.config.timings.of("boot"),
                ),
            )
        ),
    ),
    (
        "PUT",
        "/linode/instances/{linodeId}/disks/{diskId}",
        _changing(
            lambda sim, r: disks.update(
                _instance(sim, r), r.id("diskId"), r.body, sim.now()
            ).to_api()
        ),
    ),
    (
        "DELETE",
        "/linode/instances/{linodeId}/disks/{diskId}",
        _empty(_changing(lambda sim, r: disks.delete(_instance(sim, r), r.id("diskId")))),
    ),
    (
        "POST",
        "/linode/instances/{linodeId}/disks/{diskId}/resize",
        _empty(
            _changing(
                lambda sim, r: _disk_event(
                    sim,
                    r,
                    "disk_resize",
                    disks.resize(_instance(sim, r), r.id("diskId"), r.body, sim.now()),
                )
            )
        ),
    ),
    (
        "POST",
        "/linode/instances/{linodeId}/disks/{diskId}/clone",
        _changing(
            lambda sim, r: _disk_event(
                sim,
                r,
                "disk_duplicate",
                disks.clone(sim.world, _instance(sim, r), r.id("diskId"), sim.now()),
            )
        ),
    ),
    (
        "POST",
        "/linode/instances/{linodeId}/disks/{diskId}/password",
        _empty(
            _changing(
                lambda sim, r: disks.reset_password(_instance(sim, r), r.id("diskId"), r.body)
            )
        ),
    ),
    (
        "POST",
        "/linode/instances/{linodeId}/password",
        _empty(_changing(lambda sim, r: disks.reset_root_password(_instance(sim, r), r.body))),
    ),
    (
        "PUT",
        "/linode/instances/{linodeId}/configs/{configId}",
        lambda sim, r: instances.update_config(
            sim, r.id("linodeId"), r.id("configId"), r.body
        ).to_api(),
    ),
    (
        "GET",
        "/linode/instances/{linodeId}/disks",
        _listing(
            "/linode/instances/{linodeId}/disks",
            _locked(
                lambda sim, r: [d.to_api(sim.clock()) for d in _instance(sim, r).disks.values()]
            ),
        ),
    ),
    ("GET", "/linode/instances/{linodeId}/disks/{diskId}", _locked(_disk)),
    (
        "GET",
        "/linode/instances/{linodeId}/firewalls",
        _listing(
            "/linode/instances/{linodeId}/firewalls",
            _locked(
                lambda sim, r: [f.to_api() for f in resources.firewalls_of(sim, r.id("linodeId"))]
            ),
        ),
    ),
    (
        "GET",
        "/linode/stackscripts",
        _listing(
            "/linode/stackscripts",
            _locked(lambda sim, r: [s.to_api() for s in resources.all_stackscripts(sim)]),
        ),
    ),
    (
        "POST",
        "/linode/stackscripts",
        lambda sim, r: resources.create_stackscript(sim, r.body).to_api(),
    ),
    ("GET", "/linode/stackscripts/{stackscriptId}", _locked(_script)),
    (
        "PUT",
        "/linode/stackscripts/{stackscriptId}",
        lambda sim, r: resources.update_stackscript(sim, r.id("stackscriptId"), r.body).to_api(),
    ),
    (
        "DELETE",
        "/linode/stackscripts/{stackscriptId}",
        _empty(lambda sim, r: resources.delete_stackscript(sim, r.id("stackscriptId"))),
    ),
    (
        "GET",
        "/networking/firewalls",
        _listing(
            "/networking/firewalls",
            _locked(lambda sim, r: [f.to_api() for f in sim.world.firewalls.values()]),
        ),
    ),
    (
        "POST",
        "/networking/firewalls",
        lambda sim, r: resources.create_firewall(sim, r.body).to_api(),
    ),
    (
        "GET",
        "/networking/firewalls/{firewallId}",
        _locked(lambda sim, r: _firewall(sim, r).to_api()),
    ),
    (
        "PUT",
        "/networking/firewalls/{firewallId}",
        lambda sim, r: resources.update_firewall(sim, r.id("firewallId"), r.body).to_api(),
    ),
    (
        "DELETE",
        "/networking/firewalls/{firewallId}",
        _empty(lambda sim, r: resources.delete_firewall(sim, r.id("firewallId"))),
    ),
    (
        "GET",
        "/networking/firewalls/{firewallId}/rules",
        _locked(lambda sim, r: _firewall(sim, r).rules_api()),
    ),
    (
        "PUT",
        "/networking/firewalls/{firewallId}/rules",
        lambda sim, r: resources.update_rules(sim, r.id("firewallId"), r.body).rules_api(),
    ),
    (
        "GET",
        "/networking/firewalls/{firewallId}/history",
        # Paged, but no filters: the specs describe no collection here (`firewall-history`).
        _locked(
            lambda sim, r: paginate(
                [dict(v) for v in _firewall(sim, r).history], *parse_paging(r.params)
            )
        ),
    ),
    ("GET", "/networking/firewalls/{firewallId}/history/rules/{version}", _locked(_rule_version)),
    (
        "GET",
        "/networking/firewalls/{firewallId}/devices",
        _listing(
            "/networking/firewalls/{firewallId}/devices",
            _locked(lambda sim, r: [d.to_api() for d in _firewall(sim, r).devices.values()]),
        ),
    ),
    (
        "POST",
        "/networking/firewalls/{firewallId}/devices",
        lambda sim, r: resources.create_device(sim, r.id("firewallId"), r.body).to_api(),
    ),
    ("GET", "/networking/firewalls/{firewallId}/devices/{deviceId}", _locked(_device)),
    (
        "DELETE",
        "/networking/firewalls/{firewallId}/devices/{deviceId}",
        _empty(lambda sim, r: resources.delete_device(sim, r.id("firewallId"), r.id("deviceId"))),
    ),
    (
        "GET",
        "/placement/groups",
        _listing(
            "/placement/groups",
            _locked(
                lambda sim, r: [
                    placement.group_api(sim.world, g, migrations=True)
                    for g in sim.world.placement_groups.values()
                ]
            ),
        ),
    ),
    (
        "POST",
        "/placement/groups",
        _changing(lambda sim, r: _group_api(sim, placement.create_group(sim.world, r.body))),
    ),
    (
        "GET",
        "/placement/groups/{groupId}",
        _locked(lambda sim, r: placement.group_api(sim.world, _group(sim, r), migrations=True)),
    ),
    (
        "PUT",
        "/placement/groups/{groupId}",
        _changing(
            lambda sim, r: _group_api(
                sim, placement.update_group(sim.world, r.id("groupId"), r.body)
            )
        ),
    ),
    (
        "DELETE",
        "/placement/groups/{groupId}",
        _empty(_changing(lambda sim, r: placement.delete_group(sim.world, r.id("groupId")))),
    ),
    (
        "POST",
        "/placement/groups/{groupId}/assign",
        _changing(
            lambda sim, r: _group_api(sim, placement.assign(sim.world, r.id("groupId"), r.body))
        ),
    ),
    (
        "POST",
        "/placement/groups/{groupId}/unassign",
        _changing(
            lambda sim, r: _group_api(sim, placement.unassign(sim.world, r.id("groupId"), r.body))
        ),
    ),
    (
        "GET",
        "/linode/instances/{linodeId}/interfaces/settings",
        _locked(lambda sim, r: interfaces.settings_api(_instance(sim, r))),
    ),
    (
        "PUT",
        "/linode/instances/{linodeId}/interfaces/settings",
        _changing(lambda sim, r: interfaces.update_settings(_instance(sim, r), r.body)),
    ),
    ("GET", "/linode/instances/{linodeId}/interfaces", _locked(_interfaces)),
    (
        "POST",
        "/linode/instances/{linodeId}/upgrade-interfaces",
        _changing(
            lambda sim, r: interfaces.upgrade(
                sim.world, _instance(sim, r), r.body, sim.now(), book=sim.addresses
            )
        ),
    ),
    ("POST", "/linode/instances/{linodeId}/interfaces", _changing(_new_interface)),
    ("GET", "/linode/instances/{linodeId}/interfaces/{interfaceId}", _locked(_interface)),
    (
        "GET",
        "/linode/instances/{linodeId}/interfaces/{interfaceId}/firewalls",
        _listing(
            "/linode/instances/{linodeId}/interfaces/{interfaceId}/firewalls",
            _locked(_interface_firewalls),
        ),
    ),
    ("PUT", "/linode/instances/{linodeId}/interfaces/{interfaceId}", _changing(_changed_interface)),
    (
        "DELETE",
        "/linode/instances/{linodeId}/interfaces/{interfaceId}",
        _empty(
            _changing(
                lambda sim, r: interfaces.delete(sim.world, _instance(sim, r), r.id("interfaceId"))
            )
        ),
    ),
    (
        "GET",
        "/vpcs",
        _listing(
            "/vpcs",
            _locked(lambda sim, r: [vpcs.vpc_api(sim.world, v) for v in sim.world.vpcs.values()]),
        ),
    ),
    (
        "POST",
        "/vpcs",
        _changing(
            lambda sim, r: vpcs.vpc_api(
                sim.world,
                vpcs.create_vpc(sim.world, r.body, sim.now(), sim.config.withheld, _forbidden(sim)),
            )
        ),
    ),
    ("GET", "/vpcs/ips", _listing("/vpcs/ips", _locked(lambda sim, r: vpcs.ips(sim.world)))),
    ("GET", "/vpcs/ipv6s", _listing("/vpcs/ipv6s", _locked(lambda sim, r: vpcs.ipv6s(sim.world)))),
    (
        "GET",
        "/vpcs/default-ranges",
        _locked(lambda sim, r: vpcs.default_ranges(_public_ranges(sim))),
    ),
    ("GET", "/vpcs/{vpcId}", _locked(_vpc)),
    (
        "PUT",
        "/vpcs/{vpcId}",
        _changing(
            lambda sim, r: vpcs.vpc_api(
                sim.world,
                vpcs.update_vpc(
                    sim.world,
                    r.id("vpcId"),
                    r.body,
                    sim.now(),
                    sim.config.withheld,
                    _forbidden(sim),
                ),
            )
        ),
    ),
    (
        "DELETE",
        "/vpcs/{vpcId}",
        _empty(_changing(lambda sim, r: vpcs.delete_vpc(sim.world, r.id("vpcId")))),
    ),
    (
        "GET",
        "/vpcs/{vpcId}/ips",
        _listing(
            "/vpcs/{vpcId}/ips",
            _locked(lambda sim, r: vpcs.ips(sim.world, vpcs.vpc(sim.world, r.id("vpcId")).id)),
        ),
    ),
    (
        "GET",
        "/vpcs/{vpcId}/ipv6s",
        _listing(
            "/vpcs/{vpcId}/ipv6s",
            _locked(lambda sim, r: vpcs.ipv6s(sim.world, vpcs.vpc(sim.world, r.id("vpcId")).id)),
        ),
    ),
    (
        "GET",
        "/vpcs/{vpcId}/subnets",
        _listing(
            "/vpcs/{vpcId}/subnets",
            _locked(
                lambda sim, r: [
                    vpcs.subnet_api(sim.world, s)
                    for s in vpcs.vpc(sim.world, r.id("vpcId")).subnets.values()
                ]
            ),
        ),
    ),
    (
        "POST",
        "/vpcs/{vpcId}/subnets",
        _changing(
            lambda sim, r: vpcs.subnet_api(
                sim.world, vpcs.create_subnet(sim.world, r.id("vpcId"), r.body, sim.now())
            )
        ),
    ),
    ("GET", "/vpcs/{vpcId}/subnets/{vpcSubnetId}", _locked(_subnet)),
    (
        "PUT",
        "/vpcs/{vpcId}/subnets/{vpcSubnetId}",
        _changing(
            lambda sim, r: vpcs.subnet_api(
                sim.world,
                vpcs.update_subnet(
                    sim.world, r.id("vpcId"), r.id("vpcSubnetId"), r.body, sim.now()
                ),
            )
        ),
    ),
    (
        "DELETE",
        "/vpcs/{vpcId}/subnets/{vpcSubnetId}",
        _empty(
            _changing(
                lambda sim, r: vpcs.delete_subnet(sim.world, r.id("vpcId"), r.id("vpcSubnetId"))
            )
        ),
    ),
    ("GET", "/account/events", _listing("/account/events", _locked(_events))),
    ("GET", "/account/events/{eventId}", _locked(_event)),
    (
        "GET",
        "/tags",
        _listing("/tags", _locked(lambda sim, r: [{"label": t} for t in account.tags(sim.world)])),
    ),
    ("POST", "/tags", _changing(lambda sim, r: account.create_tag(sim.world, r.body))),
    (
        "GET",
        "/tags/{tagLabel}",
        _listing(
            "/tags/{tagLabel}",
            _locked(lambda sim, r: account.tagged(sim.world, r.args["tagLabel"])),
        ),
    ),
    (
        "DELETE",
        "/tags/{tagLabel}",
        _empty(_changing(lambda sim, r: account.delete_tag(sim.world, r.args["tagLabel"]))),
    ),
    (
        "POST",
        "/account/events/{eventId}/seen",
        _empty(_changing(lambda sim, r: account.mark_seen(sim.world, r.id("eventId")))),
    ),
    (
        "GET",
        "/profile/sshkeys",
        _listing(
            "/profile/sshkeys",
            _locked(lambda sim, r: [k.to_api() for k in sim.world.ssh_keys.values()]),
        ),
    ),
    (
        "POST",
        "/profile/sshkeys",
        _changing(lambda sim, r: account.create_ssh_key(sim.world, r.body, sim.now()).to_api()),
    ),
    (
        "GET",
        "/profile/sshkeys/{sshKeyId}",
        _locked(lambda sim, r: account.ssh_key(sim.world, r.id("sshKeyId")).to_api()),
    ),
    (
        "PUT",
        "/profile/sshkeys/{sshKeyId}",
        _changing(
            lambda sim, r: account.update_ssh_key(sim.world, r.id("sshKeyId"), r.body).to_api()
        ),
    ),
    (
        "DELETE",
        "/profile/sshkeys/{sshKeyId}",
        _empty(_changing(lambda sim, r: account.delete_ssh_key(sim.world, r.id("sshKeyId")))),
    ),
]


# Ids that hold a slash (`linode/debian12`, `linode/grub2`): linode-cli puts them in the
# path as they are (`kernels view linode/grub2`), others escape the slash (%2F).
_SLASHED = ("imageId", "kernelId")


def _compile(template: str) -> re.Pattern[str]:
    def arg(found: re.Match[str]) -> str:
        name = found.group(1)
        inner = r"[^/]+(?:/[^/]+)?" if name in _SLASHED else r"[^/]+"
        return f"(?P<{name}>{inner})"

    regex = re.sub(r"\\\{(\w+)\\\}", arg, re.escape(template))
    return re.compile(f"^{regex}$")


# Fewer path arguments first: a path's own words win over an argument (`/regions/availability`
# is not the region "availability", `/networking/firewalls/templates` not a firewall).
ROUTES: tuple[Route, ...] = tuple(
    sorted(
        (
            Route(method, template, handler, _compile(template))
            for method, template, handler in _TABLE
        ),
        key=lambda route: route.template.count("{"),
    )
)


def match(method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
    """The route for a method and path (below /v4), its path arguments, and whether the path
    exists for some other method."""
    path_known = False
    for route in ROUTES:
        found = route.pattern.match(path)
        if found is None:
            continue
        path_known = True
        if route.method == method:
            return route, {k: unquote(v) for k, v in found.groupdict().items()}, True
    return None, {}, path_known
