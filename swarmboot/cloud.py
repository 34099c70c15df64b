"""The Linode API, through the official SDK (linode_api4), behind one narrow interface.

`LinodeCloud` makes every call itself with `LinodeClient.get/post/put/delete`, so each call is
one request that can be counted, and translates the SDK's and the network's errors into
`CloudError`. Creating a Linode is safe under retries: labels are unique per account, so a
create whose answer was lost, or that the SDK re-sent after a 502, is found by its label
instead of being made twice.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

from swarmboot import __version__
from swarmboot.clock import Clock, SystemClock
from swarmboot.credentials import NoTokenError, Target
from swarmboot.errors import SwarmbootError
from swarmboot.firewall import rules_key
from swarmboot.pacing import ServerPacing, endpoint
from swarmboot.state import (
    CloudFirewall,
    Instance,
    PlacementGroup,
    PlacementMember,
    PublishedScript,
    Vpc,
    VpcSubnet,
)

__all__ = [
    "AccountEvent",
    "Catalogue",
    "CatalogueRegion",
    "CloudApi",
    "CloudError",
    "CreateRequest",
    "LinodeCloud",
    "RebuildRequest",
    "VpcAddress",
]

log = logging.getLogger("swarmboot.cloud")

_PRIVATE = ipaddress.ip_network("192.168.128.0/17")
PAGE = 500


class CloudError(SwarmbootError):
    """A Linode API call failed; `status` is None when no answer came at all."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        field: str | None = None,
        reason: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.field = field
        self.reason = reason

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500


@dataclass(frozen=True)
class CreateRequest:
    """A new Linode, bootstrapped by a StackScript (`stackscript_id` and its data) or by
    cloud-init (`user_data`, sent as metadata.user_data; no StackScript)."""

    label: str
    region: str
    type: str
    image: str
    tags: tuple[str, ...]
    authorized_keys: tuple[str, ...]
    stackscript_id: int | None
    stackscript_data: dict[str, str] = field(repr=False)
    root_pass: str = field(repr=False)
    private_ip: bool
    firewall_id: int | None
    placement_group_id: int | None = None
    # "linode": Linode interfaces, a public one and (with `vpc_subnet_id`) one in that VPC
    # subnet, each behind `firewall_id`. None: the account's default, asked for nothing.
    interface_generation: str | None = None
    vpc_subnet_id: int | None = None
    user_data: str | None = field(default=None, repr=False)  # a secret: the host key


@dataclass(frozen=True)
class CatalogueRegion:
    """A region as the API's catalogue has it: what it offers, and how many Linodes one
    placement group there holds (None: no limit given)."""

    id: str
    capabilities: frozenset[str]
    placement_group_size: int | None = None


@dataclass(frozen=True)
class AccountEvent:
    """One event of the account about a Linode: what happened to it and how far it got."""

    id: int
    action: str  # linode_create, linode_boot, linode_shutdown, linode_delete, ...
    linode_id: int
    status: str  # started, finished, failed, scheduled, notification
    percent: int | None = None  # percent_complete of a started event
    message: str = ""


@dataclass(frozen=True)
class VpcAddress:
    """A Linode interface's address in a VPC (`GET /vpcs/ips`)."""

    linode_id: int
    interface_id: int
    vpc_id: int
    address: str


@dataclass(frozen=True)
class RebuildRequest:
    """A fresh disk for an existing Linode: same image and StackScript (or user data), a
    new host key."""

    image: str
    authorized_keys: tuple[str, ...]
    stackscript_id: int | None
    stackscript_data: dict[str, str] = field(repr=False)
    root_pass: str = field(repr=False)
    user_data: str | None = field(default=None, repr=False)


def _bootstrap(request: CreateRequest | RebuildRequest) -> dict[str, Any]:
    """The create's or rebuild's StackScript fields, or its base64 user data."""
    if request.user_data is not None:
        return {"metadata": {"user_data": base64.b64encode(request.user_data.encode()).decode()}}
    return {
        "stackscript_id": request.stackscript_id,
        "stackscript_data": request.stackscript_data,
    }


# The catalogue: regions by id, type ids, and each image's capabilities by id.
Catalogue = tuple[dict[str, CatalogueRegion], set[str], dict[str, frozenset[str]]]


class CloudApi(Protocol):
    def catalogue(self) -> Catalogue: ...
    def instances(self, tag: str | None = None, label_prefix: str = "") -> list[Instance]: ...
    def instance(self, label: str) -> Instance | None: ...
    def boot_failure(self, instance_id: int) -> str | None: ...
    def config(self, instance_id: int) -> tuple[int, str] | None: ...
    def create_instance(self, request: CreateRequest) -> Instance: ...
    def set_kernel(self, instance_id: int, config_id: int, kernel: str) -> None: ...
    def boot(self, instance_id: int, config_id: int | None) -> None: ...
    def shutdown(self, instance_id: int) -> None: ...
    def reboot(self, instance_id: int) -> None: ...
    def delete_instance(self, instance_id: int) -> None: ...
    def set_tags(self, instance_id: int, tags: Iterable[str]) -> None: ...
    def rebuild_instance(self, instance_id: int, request: RebuildRequest) -> None: ...
    def last_event_id(self) -> int: ...
    def linode_events(
        self, since: int | None, created_from: str | None = None
    ) -> list[AccountEvent]: ...
    def rebuilt_since(self, instance_id: int, event_id: int) -> bool: ...
    def stackscripts(self) -> list[PublishedScript]: ...
    def stackscript_detail(self, script_id: int) -> dict[str, Any]: ...
    def create_stackscript(
        self, label: str, script: str, images: Iterable[str], description: str, rev_note: str
    ) -> PublishedScript: ...
    def update_stackscript(
        self, script_id: int, script: str, images: Iterable[str], description: str, rev_note: str
    ) -> PublishedScript: ...
    def delete_stackscript(self, script_id: int) -> None: ...
    def firewalls(self, labels: Iterable[str]) -> list[CloudFirewall]: ...
    def create_firewall(
        self, label: str, rules: dict[str, Any], tags: Iterable[str]
    ) -> CloudFirewall: ...
    def update_firewall(
        self,
        firewall_id: int,
        rules: dict[str, Any] | None,
        linode_ids: Iterable[int],
        attached: Iterable[int] | None = None,
    ) -> None: ...
    def delete_firewall(self, firewall_id: int) -> None: ...
    def placement_groups(self, labels: Iterable[str]) -> list[PlacementGroup]: ...
    def create_placement_group(
        self, label: str, region: str, type: str, policy: str
    ) -> PlacementGroup: ...
    def assign_placement_group(
        self, group_id: int, linode_ids: Iterable[int]
    ) -> PlacementGroup: ...
    def delete_placement_group(self, group_id: int) -> None: ...
    def account_interfaces(self) -> str | None: ...
    def vpcs(self, labels: Iterable[str]) -> list[Vpc]: ...
    def vpc_addresses(self, vpc_ids: Iterable[int]) -> list[VpcAddress]: ...
    def create_vpc(
        self, label: str, region: str, description: str, subnet_label: str, subnet_ipv4: str
    ) -> Vpc: ...
    def create_subnet(self, vpc_id: int, label: str, ipv4: str) -> VpcSubnet: ...
    def update_vpc(self, vpc_id: int, description: str) -> None: ...
    def delete_vpc(self, vpc_id: int) -> None: ...
    def set_interface_firewall(self, linode_id: int, firewall_id: int) -> int: ...
    def detach_interfaces(self, firewall_id: int, interface_ids: Iterable[int]) -> None: ...


def _instance(data: dict[str, Any]) -> Instance:
    public = private = None
    for address in data.get("ipv4") or []:
        if ipaddress.ip_address(address) in _PRIVATE:
            private = private or address
        else:
            public = public or address
    return Instance(
        id=data["id"],
        label=data["label"],
        region=data["region"],
        type=data["type"],
        status=data["status"],
        tags=tuple(data.get("tags") or ()),
        ipv4_public=public,
        ipv4_private=private,
        image=data.get("image"),
        placement_group_id=(data.get("placement_group") or {}).get("id"),
        interface_generation=data.get("interface_generation") or "legacy_config",
        created=data.get("created"),
    )


def _vpc(data: dict[str, Any]) -> Vpc:
    return Vpc(
        id=data["id"],
        label=data["label"],
        region=data["region"],
        description=data.get("description") or "",
        subnets=tuple(_subnet(s) for s in data.get("subnets") or ()),
    )


def _subnet(data: dict[str, Any]) -> VpcSubnet:
    return VpcSubnet(
        id=data["id"],
        label=data["label"],
        ipv4=data.get("ipv4") or "",
        linode_ids=tuple(sorted(n["id"] for n in data.get("linodes") or ())),
    )


def _made_or_taken(exc: CloudError, made: list, label: str, kind: str, hint: str) -> Any:
    """After a create that failed on the way or on its label: the object a lost answer hid
    (`made`, found by what only this create would give it), else why it failed: the label
    is another's."""
    if made:
        return made[0]
    if exc.field == "label":
        raise CloudError(
            f"the label {label} is taken by a {kind} that is not this cluster's",
            status=exc.status,
            field="label",
            reason=exc.reason,
            hint=hint,
        ) from None
    raise exc


def _script(data: dict[str, Any]) -> PublishedScript:
    return PublishedScript(
        id=data["id"],
        label=data["label"],
        rev_note=data.get("rev_note") or "",
        images=tuple(data.get("images") or ()),
    )


class LinodeCloud:
    def __init__(
        self,
        target: Target,
        *,
        timeout: float = 30.0,
        retry_interval: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        from linode_api4 import LinodeClient

        self.target = target
        # Each request waits while the API's last answers say it would be refused (their
        # X-RateLimit-* headers; see swarmboot.pacing), on the clock the waits use.
        self.pacing = ServerPacing(clock or SystemClock())
        # The SDK retries 408, 429 (honouring Retry-After) and 502, and dropped connections;
        # 500, 503 and 504 are passing faults too. A retried create is safe: see
        # create_instance.
        self.client = LinodeClient(
            target.token,
            base_url=target.api_url,
            user_agent=f"swarmboot/{__version__}",
            retry_rate_limit_interval=retry_interval,
            retry_statuses=[500, 503, 504],
        )
        # The SDK sets no timeout: a hung connection would wait forever.
        self._timeout = timeout
        self.client.session.request = self._sending(self.client.session.request)
        self.requests = 0

    def _sending(self, request):
        def call(method, url, **kwargs):
            kwargs.setdefault("timeout", self._timeout)
            key = endpoint(method, url)
            self.pacing.before(key)
            self.requests += 1
            try:
                response = request(method, url, **kwargs)
            except BaseException:
                self.pacing.after(key, None, None)
                raise
            self.pacing.after(key, response.status_code, response.headers)
            return response

        return call

    # --- plumbing --------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, scoped: bool = False, **kwargs: Any) -> Any:
        """One request. A 401 means the token was refused (`NoTokenError`), unless `scoped`:
        then it may only lack the scope this endpoint needs, and is a `CloudError`."""
        from linode_api4 import ApiError

        try:
            return getattr(self.client, method)(path, **kwargs)
        except ApiError as exc:
            body = getattr(exc, "json", None) or {}
            entries = body.get("errors") or []
            first = entries[0] if entries else {}
            reason = first.get("reason") or "; ".join(exc.errors or []) or str(exc)
            field_name = first.get("field")
            if exc.status == 401 and not scoped:
                raise NoTokenError(
                    f"the Linode API at {self.target.api_url} refused the token from "
                    f"{self.target.source} (401 {reason})",
                    hint="check the token, or make a new one with read/write access to "
                    "Linodes, StackScripts and Firewalls",
                ) from None
            where = f" ({field_name})" if field_name else ""
            raise CloudError(
                f"Linode API: {method.upper()} {path.split('?')[0]}: {exc.status} {reason}{where}",
                status=exc.status,
                field=field_name,
                reason=reason,
            ) from None
        except requests.RequestException as exc:
            raise CloudError(
                f"Linode API: {method.upper()} {path.split('?')[0]}: no answer "
                f"from {self.target.api_url} ({type(exc).__name__})",
                hint="check the network or --api-url",
            ) from None

    def _list(self, path: str, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            data = self._call("get", f"{path}?page={page}&page_size={PAGE}", filters=filters)
            out += data["data"]
            if page >= data["pages"]:
                return out
            page += 1

    # --- catalogue -------------------------------------------------------------------------

    def catalogue(self) -> Catalogue:
        regions = {
            r["id"]: CatalogueRegion(
                r["id"],
                frozenset(r.get("capabilities") or ()),
                (r.get("placement_group_limits") or {}).get("maximum_linodes_per_pg"),
            )
            for r in self._list("/regions")
        }
        types = {t["id"] for t in self._list("/linode/types")}
        images = {i["id"]: frozenset(i.get("capabilities") or ()) for i in self._list("/images")}
        return regions, types, images

    # --- instances -------------------------------------------------------------------------

    def instances(self, tag: str | None = None, label_prefix: str = "") -> list[Instance]:
        """The cluster's Linodes and any others whose labels start like the cluster's; with
        no tag, every Linode of the account."""
        if tag is None:
            return [_instance(d) for d in self._list("/linode/instances")]
        found = self._list(
            "/linode/instances",
            filters={"+or": [{"tags": tag}, {"label": {"+contains": label_prefix}}]},
        )
        return [_instance(d) for d in found]

    def instance(self, label: str) -> Instance | None:
        found = self._list("/linode/instances", filters={"label": label})
        return _instance(found[0]) if found else None

    def boot_failure(self, instance_id: int) -> str | None:
        """The message of the Linode's last boot, if that boot failed."""
        found = self._call(
            "get",
            "/account/events?page_size=25",
            filters={
                "entity.id": instance_id,
                "entity.type": "linode",
                "action": "linode_boot",
                "+order_by": "created",
                "+order": "desc",
            },
        )["data"]
        if found and found[0]["status"] == "failed":
            return found[0].get("message") or "the boot failed"
        return None

    def config(self, instance_id: int) -> tuple[int, str] | None:
        configs = self._list(f"/linode/instances/{instance_id}/configs")
        return (configs[0]["id"], configs[0]["kernel"]) if configs else None

    def create_instance(self, request: CreateRequest) -> Instance:
        body: dict[str, Any] = {
            "label": request.label,
            "region": request.region,
            "type": request.type,
            "image": request.image,
            "tags": list(request.tags),
            "booted": False,
            "authorized_keys": list(request.authorized_keys),
            "root_pass": request.root_pass,
            **_bootstrap(request),
            "private_ip": request.private_ip,
        }
        if request.interface_generation == "linode":
            # The firewall goes on each interface: a Linode with Linode interfaces takes
            # none of its own, nor a private IPv4 (its VPC address is its private one).
            body["interface_generation"] = "linode"
            del body["private_ip"]
            public: dict[str, Any] = {"public": {}, "default_route": {"ipv4": True, "ipv6": True}}
            wanted = [public]
            if request.vpc_subnet_id is not None:
                wanted.append({"vpc": {"subnet_id": request.vpc_subnet_id}})
            if request.firewall_id is not None:
                for interface in wanted:
                    interface["firewall_id"] = request.firewall_id
            body["interfaces"] = wanted
        elif request.firewall_id is not None:
            body["firewall_id"] = request.firewall_id
        if request.placement_group_id is not None:
            body["placement_group"] = {"id": request.placement_group_id}
        try:
            return _instance(self._call("post", "/linode/instances", data=body))
        except CloudError as exc:
            taken = exc.status == 400 and exc.field == "label"
            if not (taken or exc.retryable):
                raise
            # The Linode may exist: an earlier attempt, or this one, got through unanswered.
            existing = self.instance(request.label)
            if existing is not None and set(request.tags) <= set(existing.tags):
                log.info("%s exists already (an earlier create got through)", request.label)
                return existing
            if taken:
                raise CloudError(
                    f"the label {request.label} is taken by a Linode that is not this cluster's",
                    status=400,
                    field="label",
                    hint="rename that Linode or choose another cluster.name",
                ) from None
            raise

    def set_kernel(self, instance_id: int, config_id: int, kernel: str) -> None:
        self._call(
            "put", f"/linode/instances/{instance_id}/configs/{config_id}", data={"kernel": kernel}
        )

    def boot(self, instance_id: int, config_id: int | None) -> None:
        data = {"config_id": config_id} if config_id is not None else {}
        self._call("post", f"/linode/instances/{instance_id}/boot", data=data)

    def reboot(self, instance_id: int) -> None:
        """Reboot the Linode with its config profile (its kernel: GRUB 2, the disk's own)."""
        self._call("post", f"/linode/instances/{instance_id}/reboot")

    def shutdown(self, instance_id: int) -> None:
        """Power the Linode off (a Linode that is off already is fine)."""
        try:
            self._call("post", f"/linode/instances/{instance_id}/shutdown")
        except CloudError as exc:
            if not (exc.status == 400 and "offline" in (exc.reason or "").lower()):
                raise

    def delete_instance(self, instance_id: int) -> None:
        try:
            self._call("delete", f"/linode/instances/{instance_id}")
        except CloudError as exc:
            if exc.status != 404:  # gone already
                raise

    def set_tags(self, instance_id: int, tags: Iterable[str]) -> None:
        self._call("put", f"/linode/instances/{instance_id}", data={"tags": sorted(set(tags))})

    def rebuild_instance(self, instance_id: int, request: RebuildRequest) -> None:
        """Replace the Linode's disks (and config profiles) from the image and StackScript
        (or user data); it is left offline, so the kernel can be set before it boots."""
        self._call(
            "post",
            f"/linode/instances/{instance_id}/rebuild",
            data={
                "image": request.image,
                "root_pass": request.root_pass,
                "authorized_keys": list(request.authorized_keys),
                **_bootstrap(request),
                "booted": False,
            },
        )

    def last_event_id(self) -> int:
        """The id of the account's newest event (0 if there is none): event ids only grow."""
        found = self._call("get", "/account/events?page_size=25")["data"]
        return max((e["id"] for e in found), default=0)

    def linode_events(
        self, since: int | None, created_from: str | None = None
    ) -> list[AccountEvent]:
        """The account's events about Linodes after event `since`, or else those created
        from `created_from` on (an API time, such as a Linode's `created`; from a second
        before it, as the API's stamps are whole seconds), oldest first: one request for
        every Linode (more only past 500 events)."""
        if since is not None:
            after: dict[str, Any] = {"id": {"+gt": since}}
        elif created_from is not None:
            start = datetime.datetime.fromisoformat(created_from) - datetime.timedelta(seconds=1)
            after = {"created": {"+gte": start.strftime("%Y-%m-%dT%H:%M:%S")}}
        else:
            raise ValueError("linode_events needs an event id or a time to start from")
        found = self._list(
            "/account/events",
            filters={
                "+and": [after, {"entity.type": "linode"}],
                "+order_by": "id",
                "+order": "asc",
            },
        )
        return [
            AccountEvent(
                id=e["id"],
                action=e["action"],
                linode_id=e["entity"]["id"],
                status=e["status"],
                percent=e.get("percent_complete"),
                message=e.get("message") or "",
            )
            for e in found
            if e.get("entity")
        ]

    def rebuilt_since(self, instance_id: int, event_id: int) -> bool:
        """Whether the Linode got a fresh disk (rebuilt or made) after event `event_id`."""
        found = self._call(
            "get",
            "/account/events?page_size=25",
            filters={
                "+and": [
                    {"entity.id": instance_id},
                    {"entity.type": "linode"},
                    {"id": {"+gt": event_id}},
                    {"+or": [{"action": "linode_rebuild"}, {"action": "linode_create"}]},
                ]
            },
        )["data"]
        return bool(found)

    # --- StackScripts ----------------------------------------------------------------------

    def stackscripts(self) -> list[PublishedScript]:
        return [_script(d) for d in self._list("/linode/stackscripts", filters={"mine": True})]

    def stackscript_detail(self, script_id: int) -> dict[str, Any]:
        return self._call("get", f"/linode/stackscripts/{script_id}")

    def create_stackscript(
        self, label: str, script: str, images: Iterable[str], description: str, rev_note: str
    ) -> PublishedScript:
        return _script(
            self._call(
                "post",
                "/linode/stackscripts",
                data={
                    "label": label,
                    "script": script,
                    "images": list(images),
                    "description": description,
                    "rev_note": rev_note,
                    "is_public": False,
                },
            )
        )

    def update_stackscript(
        self, script_id: int, script: str, images: Iterable[str], description: str, rev_note: str
    ) -> PublishedScript:
        return _script(
            self._call(
                "put",
                f"/linode/stackscripts/{script_id}",
                data={
                    "script": script,
                    "images": list(images),
                    "description": description,
                    "rev_note": rev_note,
                },
            )
        )

    def delete_stackscript(self, script_id: int) -> None:
        self._call("delete", f"/linode/stackscripts/{script_id}")

    # --- Cloud Firewalls -------------------------------------------------------------------

    @staticmethod
    def _firewall(data: dict[str, Any]) -> CloudFirewall:
        # A firewall lists its devices as `entities`, Linodes and Linode interfaces (with
        # their Linode as `parent_entity`): no request per firewall, nor per Linode.
        rules = data.get("rules") or {}
        entities = data.get("entities") or []
        return CloudFirewall(
            id=data["id"],
            label=data["label"],
            inbound_policy=rules.get("inbound_policy", ""),
            inbound=rules_key(rules.get("inbound") or []),
            linode_ids=tuple(sorted(e["id"] for e in entities if e["type"] == "linode")),
            tags=tuple(data.get("tags") or ()),
            interfaces=tuple(
                sorted(
                    (e["parent_entity"]["id"], e["id"])
                    for e in entities
                    if e["type"] == "linode_interface" and e.get("parent_entity")
                )
            ),
        )

    def firewalls(self, labels: Iterable[str]) -> list[CloudFirewall]:
        labels = list(labels)
        found = self._list(
            "/networking/firewalls", filters={"+or": [{"label": label} for label in labels]}
        )
        return [self._firewall(d) for d in found if d["label"] in labels]

    def create_firewall(
        self, label: str, rules: dict[str, Any], tags: Iterable[str]
    ) -> CloudFirewall:
        tags = list(tags)
        try:
            data = self._call(
                "post",
                "/networking/firewalls",
                data={"label": label, "rules": rules, "tags": tags},
            )
        except CloudError as exc:
            if not (exc.retryable or exc.field == "label"):
                raise
            # A create whose answer was lost made it, or the label is another's: only one
            # carrying every tag asked for is taken as the one this create made.
            existing = [f for f in self.firewalls([label]) if set(tags) <= set(f.tags)]
            if existing:
                return existing[0]
            raise
        return self._firewall(data)

    def update_firewall(
        self,
        firewall_id: int,
        rules: dict[str, Any] | None,
        linode_ids: Iterable[int],
        attached: Iterable[int] | None = None,
    ) -> None:
        """Replace the rules (unless None) and make `linode_ids` the Linodes behind it.
        `attached`: the Linodes behind it as last listed (its `entities`); when none of them
        is to go, the missing ones are added without reading its devices first."""
        if rules is not None:
            self._call("put", f"/networking/firewalls/{firewall_id}/rules", data=rules)
        wanted = set(linode_ids)
        if attached is not None and set(attached) <= wanted:
            try:
                for linode_id in sorted(wanted - set(attached)):
                    self._call(
                        "post",
                        f"/networking/firewalls/{firewall_id}/devices",
                        data={"id": linode_id, "type": "linode"},
                    )
                return
            except CloudError as exc:
                if exc.status != 400:
                    raise
                # Its devices changed since they were listed: read them.
        devices = self._list(f"/networking/firewalls/{firewall_id}/devices")
        for device in devices:
            if device["entity"]["type"] == "linode" and device["entity"]["id"] not in wanted:
                self._call("delete", f"/networking/firewalls/{firewall_id}/devices/{device['id']}")
        attached = {d["entity"]["id"] for d in devices if d["entity"]["type"] == "linode"}
        for linode_id in sorted(wanted - attached):
            self._call(
                "post",
                f"/networking/firewalls/{firewall_id}/devices",
                data={"id": linode_id, "type": "linode"},
            )

    def delete_firewall(self, firewall_id: int) -> None:
        try:
            self._call("delete", f"/networking/firewalls/{firewall_id}")
        except CloudError as exc:
            if exc.status != 404:
                raise

    # --- placement groups ------------------------------------------------------------------

    @staticmethod
    def _placement_group(data: dict[str, Any]) -> PlacementGroup:
        # A group lists its members with their compliance: no request per group.
        return PlacementGroup(
            id=data["id"],
            label=data["label"],
            region=data["region"],
            type=data["placement_group_type"],
            policy=data["placement_group_policy"],
            compliant=bool(data.get("is_compliant", True)),
            members=tuple(
                PlacementMember(m["linode_id"], bool(m.get("is_compliant", True)))
                for m in data.get("members") or []
            ),
        )

    def placement_groups(self, labels: Iterable[str]) -> list[PlacementGroup]:
        labels = list(labels)
        found = self._list(
            "/placement/groups", filters={"+or": [{"label": label} for label in labels]}
        )
        return [self._placement_group(d) for d in found if d["label"] in labels]

    def create_placement_group(
        self, label: str, region: str, type: str, policy: str
    ) -> PlacementGroup:
        try:
            data = self._call(
                "post",
                "/placement/groups",
                data={
                    "label": label,
                    "region": region,
                    "placement_group_type": type,
                    "placement_group_policy": policy,
                },
            )
        except CloudError as exc:
            if not (exc.retryable or exc.field == "label"):
                raise
            # A create whose answer was lost made it, or the label is another's. Groups have
            # no tags: only one as asked for and without members (the managers come after
            # it) is taken as the one this create made.
            made = [
                g
                for g in self.placement_groups([label])
                if (g.region, g.type, g.policy) == (region, type, policy) and not g.members
            ]
            return _made_or_taken(
                exc,
                made,
                label,
                "placement group",
                "rename that group or choose another cluster.name",
            )
        return self._placement_group(data)

    def assign_placement_group(self, group_id: int, linode_ids: Iterable[int]) -> PlacementGroup:
        """Put the Linodes into the group, all of them or none (a strict group refuses one
        that would share a member's host: `400` on `linodes`)."""
        ids = sorted(set(linode_ids))
        try:
            data = self._call("post", f"/placement/groups/{group_id}/assign", data={"linodes": ids})
        except CloudError as exc:
            if not (exc.retryable or exc.field == "linodes"):
                raise
            # An assign whose answer was lost went through: the Linodes are members now.
            found = self._placement_group(self._call("get", f"/placement/groups/{group_id}"))
            if set(ids) <= set(found.linode_ids):
                return found
            raise
        return self._placement_group(data)

    def delete_placement_group(self, group_id: int) -> None:
        try:
            self._call("delete", f"/placement/groups/{group_id}")
        except CloudError as exc:
            if exc.status != 404:
                raise

    # --- the account and Linode interfaces ---------------------------------------------------

    def account_interfaces(self) -> str | None:
        """The account's `interfaces_for_new_linodes`: which interfaces a new Linode gets by
        default, and which it may be given (None where the account has no such setting)."""
        found = self._call("get", "/account/settings", scoped=True)
        return found.get("interfaces_for_new_linodes")

    def set_interface_firewall(self, linode_id: int, firewall_id: int) -> int:
        """Put the Linode's public and VPC interfaces behind the firewall (an interface is
        behind one at most: another firewall it had is replaced). How many were changed."""
        found = self._call("get", f"/linode/instances/{linode_id}/interfaces")["interfaces"]
        changed = 0
        for interface in found:
            if interface.get("vlan") or interface.get("firewall_id") == firewall_id:
                continue
            self._call(
                "put",
                f"/linode/instances/{linode_id}/interfaces/{interface['id']}",
                data={"firewall_id": firewall_id},
            )
            changed += 1
        return changed

    def detach_interfaces(self, firewall_id: int, interface_ids: Iterable[int]) -> None:
        """Take the Linode interfaces off the firewall (those no longer behind it are fine)."""
        ids = set(interface_ids)
        for device in self._list(f"/networking/firewalls/{firewall_id}/devices"):
            entity = device["entity"]
            if entity["type"] == "linode_interface" and entity["id"] in ids:
                try:
                    self._call(
                        "delete", f"/networking/firewalls/{firewall_id}/devices/{device['id']}"
                    )
                except CloudError as exc:
                    if exc.status != 404:
                        raise

    # --- VPCs ------------------------------------------------------------------------------

    def vpcs(self, labels: Iterable[str]) -> list[Vpc]:
        """The VPCs holding these labels, with their subnets and the Linodes in each."""
        labels = list(labels)
        found = self._list("/vpcs", filters={"+or": [{"label": label} for label in labels]})
        return [_vpc(d) for d in found if d["label"] in labels]

    def vpc_addresses(self, vpc_ids: Iterable[int]) -> list[VpcAddress]:
        """The addresses of the Linode interfaces in these VPCs: one request for them all."""
        ids = sorted(set(vpc_ids))
        if not ids:
            return []
        found = self._list("/vpcs/ips", filters={"+or": [{"vpc_id": i} for i in ids]})
        return [
            VpcAddress(d["linode_id"], d["interface_id"], d["vpc_id"], d["address"])
            for d in found
            if d.get("interface_id") and d.get("address") and d["vpc_id"] in ids
        ]

    def create_vpc(
        self, label: str, region: str, description: str, subnet_label: str, subnet_ipv4: str
    ) -> Vpc:
        try:
            data = self._call(
                "post",
                "/vpcs",
                data={
                    "label": label,
                    "region": region,
                    "description": description,
                    "subnets": [{"label": subnet_label, "ipv4": subnet_ipv4}],
                },
            )
        except CloudError as exc:
            if not (exc.retryable or exc.field == "label"):
                raise
            # A create whose answer was lost made it, or the label is another's. VPCs have
            # no tags: only one with the description asked for (its mark) is taken as made.
            made = [
                v for v in self.vpcs([label]) if (v.region, v.description) == (region, description)
            ]
            return _made_or_taken(
                exc,
                made,
                label,
                "VPC",
                "rename that VPC, choose another cluster.name, or set "
                'cluster.interfaces = "legacy"',
            )
        return _vpc(data)

    def create_subnet(self, vpc_id: int, label: str, ipv4: str) -> VpcSubnet:
        try:
            data = self._call(
                "post", f"/vpcs/{vpc_id}/subnets", data={"label": label, "ipv4": ipv4}
            )
        except CloudError as exc:
            if not (exc.retryable or exc.field == "label"):
                raise
            # A lost answer: the subnet is there under its label, with its range.
            found = self._call("get", f"/vpcs/{vpc_id}")
            made = [s for s in _vpc(found).subnets if (s.label, s.ipv4) == (label, ipv4)]
            if made:
                return made[0]
            raise
        return _subnet(data)

    def update_vpc(self, vpc_id: int, description: str) -> None:
        self._call("put", f"/vpcs/{vpc_id}", data={"description": description})

    def delete_vpc(self, vpc_id: int) -> None:
        """Delete the VPC and its subnets (refused, 400, while interfaces are in them)."""
        try:
            self._call("delete", f"/vpcs/{vpc_id}")
        except CloudError as exc:
            if exc.status != 404:
                raise
