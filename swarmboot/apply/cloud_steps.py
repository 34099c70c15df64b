"""The runners of the cloud's steps: StackScripts, Cloud Firewalls, placement groups, Linodes
and their tags."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tenacity import Retrying, retry_if_exception, retry_if_result

from swarmboot import facts
from swarmboot.adopt import MarkInstance
from swarmboot.apply.run import Replan, Run
from swarmboot.clock import stop_after
from swarmboot.cloud import CloudError, CreateRequest, RebuildRequest
from swarmboot.cluster import FIREWALLS, Context
from swarmboot.down import DeleteCloudFirewall, DeletePlacementGroup, DeleteStackScript
from swarmboot.errors import SwarmbootError
from swarmboot.interfaces import (
    LINODE,
    SUBNET_LABEL,
    DeleteVpc,
    EnsureVpc,
    MarkVpc,
    vpc_description,
)
from swarmboot.keys import HostKey, new_host_key
from swarmboot.marks import marked_tags
from swarmboot.placement import PLACEMENT_TYPE, AssignPlacementGroup, EnsurePlacementGroup
from swarmboot.plan import (
    ClearRebuildMark,
    CreateInstance,
    DeleteInstance,
    EnsureCloudFirewall,
    PublishStackScript,
    RebuildInstance,
    SetKernel,
    SyncCloudFirewall,
)
from swarmboot.preflight import node_data
from swarmboot.publish import publish_one
from swarmboot.recover import FenceNode, MarkRebuild
from swarmboot.state import HOST_KEY_TAG, REBUILD_TAG, Instance, host_key_tag, rebuild_tag
from swarmboot.userdata import node_user_data

__all__ = ["RUNNERS", "create"]


def _publish(run: Run, step: PublishStackScript) -> None:
    ctx = run.ctx
    run.published = run.call("publish", lambda: publish_one(ctx.cloud, step, ctx.script))
    run.script_id = run.published.id
    run.report(step.describe())
    kind = "stackscript_published" if step.action == "create" else "stackscript_updated"
    run.changed(kind, step.label, run.script_id)


def _ensure_firewall(run: Run, step: EnsureCloudFirewall) -> None:
    made = run.call(
        "firewall",
        lambda: run.ctx.cloud.create_firewall(step.label, step.rules.api(), [run.ctx.spec.tag]),
    )
    run.firewalls[step.label] = made
    run.report(step.describe())
    run.changed("firewall_created", step.label, made.id)


def _sync_firewall(run: Run, step: SyncCloudFirewall) -> None:
    firewall_id = step.firewall_id
    linode_ids = step.linode_ids
    if firewall_id is None or linode_ids is None:
        raise Replan(f"{step.describe()}: planned before its devices were known")
    cloud = run.ctx.cloud
    rules = step.rules.api() if step.rules is not None else None
    known = run.firewalls.get(step.label)
    attached = known.linode_ids if known is not None and known.id == firewall_id else None
    try:
        run.call(
            "firewall",
            lambda: cloud.update_firewall(firewall_id, rules, linode_ids, attached),
        )
        # Linode interfaces: each Linode's public and VPC interfaces put behind it (one it
        # was made with, or whose firewall was changed), the strays taken off.
        for linode_id in step.attach_interfaces:
            run.call("firewall", lambda i=linode_id: cloud.set_interface_firewall(i, firewall_id))
        if step.detach_interfaces:
            run.call(
                "firewall", lambda: cloud.detach_interfaces(firewall_id, step.detach_interfaces)
            )
    except CloudError as exc:
        if exc.status == 404:
            raise Replan(f"Cloud Firewall {step.label}, or a Linode behind it, is gone") from None
        raise
    if step.attach_interfaces or step.detach_interfaces:
        run.relist.add(FIREWALLS)  # the interfaces behind it are as the next listing says
    elif known is not None and known.id == firewall_id:
        run.firewalls[step.label] = replace(
            known,
            inbound=step.rules.key() if step.rules is not None else known.inbound,
            inbound_policy=step.rules.inbound_policy
            if step.rules is not None
            else known.inbound_policy,
            linode_ids=tuple(sorted(step.linode_ids)),
        )
    else:
        run.relist.add(FIREWALLS)
    run.report(step.describe())
    run.changed("firewall_updated", step.label, firewall_id)


def _ensure_vpc(run: Run, step: EnsureVpc) -> None:
    """The region's VPC with its subnet; the description carries the cluster's tag and the
    mark only this identity makes (VPCs have no tags)."""
    ctx = run.ctx
    if step.vpc_id is not None:
        made = run.call(
            "vpc", lambda: ctx.cloud.create_subnet(step.vpc_id, SUBNET_LABEL, step.subnet)
        )
        run.vpc_subnets[step.label] = made.id
        run.report(step.describe())
        run.changed("vpc_subnet_created", step.label, step.vpc_id)
        return
    description = vpc_description(ctx.spec, ctx.marks, step.label, step.region)
    vpc = run.call(
        "vpc",
        lambda: ctx.cloud.create_vpc(
            step.label, step.region, description, SUBNET_LABEL, step.subnet
        ),
    )
    subnet = vpc.subnet(SUBNET_LABEL)
    if subnet is None:
        raise Replan(f"VPC {step.label} was made without its subnet")
    run.vpc_subnets[step.label] = subnet.id
    run.report(step.describe())
    run.changed("vpc_created", step.label, vpc.id)


def _made_first(ids: dict[str, int], label: str, what: str) -> int:
    """The id of something the run observed or made (a placement group, a VPC's subnet):
    `Replan` if it was to be made first, and was not."""
    found = ids.get(label)
    if found is None:
        raise Replan(f"{what} {label} was to be made first, and was not")
    return found


def _ensure_placement_group(run: Run, step: EnsurePlacementGroup) -> None:
    made = run.call(
        "placement",
        lambda: run.ctx.cloud.create_placement_group(
            step.label, step.region, PLACEMENT_TYPE, step.policy
        ),
    )
    run.placement_group_ids[step.label] = made.id
    run.report(step.describe())
    run.changed("placement_group_created", step.label, made.id)


def _placement_group_id(run: Run, label: str) -> int:
    return _made_first(run.placement_group_ids, label, "placement group")


def _assign_placement_group(run: Run, step: AssignPlacementGroup) -> None:
    group_id = (
        step.group_id if step.group_id is not None else _placement_group_id(run, step.group_label)
    )
    try:
        run.call(
            "placement",
            lambda: run.ctx.cloud.assign_placement_group(group_id, step.linode_ids),
        )
    except CloudError as exc:
        if exc.status == 400 and exc.field == "linodes":
            raise CloudError(
                f"Linode refused to put {', '.join(step.labels)} into placement group "
                f"{step.group_label}: {exc.reason}",
                status=exc.status,
                field=exc.field,
                reason=exc.reason,
                hint="a strict group cannot take a manager on another member's host: delete "
                "that manager's Linode and `swarmboot node rebuild` makes it again inside the "
                'group, on a host of its own; or set cluster.manager_placement = "none" to '
                "keep the managers out of a group",
            ) from None
        raise
    run.report(step.describe())
    for label, linode_id in zip(step.labels, step.linode_ids, strict=True):
        run.changed("linode_placed", label, linode_id)


def _root_password(ctx: Context) -> str:
    return ctx.root_password or secrets.token_urlsafe(24) + "-Aa1"


def _script_id(run: Run) -> int:
    if run.script_id is None:
        raise SwarmbootError(f"StackScript {run.ctx.script.label} is not published")
    return run.script_id


def _bootstrap(
    run: Run, step: CreateInstance | RebuildInstance, host_key: HostKey
) -> dict[str, Any]:
    """How the node runs its script on its first boot, as the step says: the published
    StackScript with the node's data, or the same script and data as cloud-init user data,
    with no StackScript."""
    ctx = run.ctx
    data = node_data(
        ctx.spec, ctx.admin_keys, step.label, step.role, step.region, host_key.private_b64
    )
    if step.bootstrap == "cloud-init":
        return {
            "stackscript_id": None,
            "stackscript_data": {},
            "user_data": node_user_data(ctx.script.cloud_config, data, host_key),
        }
    return {"stackscript_id": _script_id(run), "stackscript_data": data}


def create(run: Run, step: CreateInstance) -> Instance:
    """Make the Linode unbooted, behind its Cloud Firewall, with a new pinned host key."""
    ctx, spec = run.ctx, run.ctx.spec
    host_key = new_host_key()
    request = CreateRequest(
        label=step.label,
        region=step.region,
        type=step.type,
        image=spec.cluster.image,
        # The pin and the mark go with the create: no moment where the Linode is there
        # without them.
        tags=(
            spec.tag,
            host_key_tag(host_key.fingerprint),
            ctx.marks.mark(spec.cluster.name, step.label, host_key.fingerprint),
        ),
        authorized_keys=(ctx.identity_public,),
        **_bootstrap(run, step, host_key),
        root_pass=_root_password(ctx),
        private_ip=(not spec.multi_region or spec.cluster.advertise == "private"),
        firewall_id=firewall.id if (firewall := run.firewalls.get(step.firewall)) else None,
        placement_group_id=(
            _placement_group_id(run, step.placement_group) if step.placement_group else None
        ),
        interface_generation=step.interface_generation
        if step.interface_generation == LINODE
        else None,
        vpc_subnet_id=_made_first(run.vpc_subnets, step.vpc, "VPC") if step.vpc else None,
    )

    sent = [0.0]

    def attempt() -> Instance:
        slot = run.limiter.acquire()
        sent[0] = ctx.clock.monotonic()
        try:
            return ctx.cloud.create_instance(request)
        finally:
            run.limiter.answered(slot)

    inst = run.call("create", attempt)
    run.made(inst)
    # The API began it somewhere between the request and its answer.
    run.asked(inst.id, "linode_create", (sent[0] + ctx.clock.monotonic()) / 2)
    with run.lock:  # creates run in parallel
        run.instances[inst.label] = inst
        # Made behind its firewall: the API attaches it with the create.
        behind = run.firewalls.get(step.firewall)
        # (Made with Linode interfaces, its interfaces are: the next look lists them.)
        if behind is not None and behind.id == request.firewall_id and not inst.linode_interfaces:
            ids = tuple(sorted({*behind.linode_ids, inst.id}))
            run.firewalls[step.firewall] = replace(behind, linode_ids=ids)
    run.report(step.describe())
    run.changed("linode_created", inst.label, inst.id)
    return inst


def _set_kernel(run: Run, step: SetKernel) -> None:
    ctx = run.ctx
    inst = run.instance(step.label)
    config = run.call("config", lambda: ctx.cloud.config(inst.id))
    if config is None and inst.status in ("provisioning", "rebuilding"):
        # Linode lays the new disks and config profile while it provisions or rebuilds.
        config = Retrying(
            retry=retry_if_result(lambda found: found is None),
            wait=lambda state: ctx.settings.poll_interval,
            stop=stop_after(ctx.clock, ctx.settings.ready_timeout),
            sleep=ctx.clock.sleep,
            retry_error_callback=lambda state: None,
        )(lambda: run.call("config", lambda: ctx.cloud.config(inst.id)))
    if config is None:
        raise SwarmbootError(
            f"{inst.label} has no config profile to set the kernel of",
            hint="rebuild it from an image",
        )
    if config[1] != facts.GRUB_KERNEL:
        run.call("kernel", lambda: ctx.cloud.set_kernel(inst.id, config[0], facts.GRUB_KERNEL))
        run.changed("kernel_set", inst.label, inst.id)
    run.instances[inst.label] = replace(inst, config=(config[0], facts.GRUB_KERNEL))
    run.report(step.describe())


def _again_while(
    ctx: Context, failing: Callable[[BaseException], bool], timeout: float
) -> Retrying:
    """Call again, every poll interval, while the call fails as `failing` says, for at most
    `timeout` seconds (then its last error)."""
    return Retrying(
        retry=retry_if_exception(failing),
        wait=lambda state: ctx.settings.poll_interval,
        stop=stop_after(ctx.clock, timeout),
        sleep=ctx.clock.sleep,
        reraise=True,
    )


def busy(exc: BaseException) -> bool:
    """A Linode in the middle of a boot or shutdown answers 400 "busy" for a moment."""
    return isinstance(exc, CloudError) and exc.status == 400 and "busy" in exc.reason.lower()


def _rebuild(run: Run, step: RebuildInstance) -> None:
    """A fresh disk from the image and the StackScript (or user data), with a new host key.
    The new key's pin goes into the tags before the rebuild is asked for, so whatever the
    node answers with afterwards can be checked, even after a crash in between."""
    ctx = run.ctx
    inst = run.instance(step.label)
    host_key = new_host_key()
    bootstrap = _bootstrap(run, step, host_key)
    kept = tuple(t for t in inst.tags if not t.startswith(HOST_KEY_TAG))
    tags = marked_tags(
        (*kept, host_key_tag(host_key.fingerprint)),
        ctx.marks.mark(ctx.spec.cluster.name, step.label, host_key.fingerprint),
    )
    run.call("tags", lambda: ctx.cloud.set_tags(inst.id, tags))
    request = RebuildRequest(
        image=step.image,
        authorized_keys=(ctx.identity_public,),
        **bootstrap,
        root_pass=_root_password(ctx),
    )
    sent = ctx.clock.monotonic()
    _again_while(ctx, busy, ctx.settings.ready_timeout)(
        lambda: run.call("rebuild", lambda: ctx.cloud.rebuild_instance(inst.id, request))
    )
    run.asked(inst.id, "linode_rebuild", sent)
    ctx.forget(step.label)
    run.instances[step.label] = replace(inst, tags=tags, status="rebuilding", config=None)
    run.report(step.describe())
    run.changed("linode_rebuilt", step.label, inst.id)


def _delete(run: Run, step: DeleteInstance) -> None:
    run.instances.pop(step.label, None)
    run.ctx.forget(step.label)
    run.call("delete", lambda: run.ctx.cloud.delete_instance(step.linode_id))
    run.report(step.describe())
    run.changed("linode_deleted", step.label, step.linode_id)


def _delete_firewall(run: Run, step: DeleteCloudFirewall) -> None:
    run.call("delete", lambda: run.ctx.cloud.delete_firewall(step.firewall_id))
    run.report(step.describe())
    run.changed("firewall_deleted", step.label, step.firewall_id)


def _delete_vpc(run: Run, step: DeleteVpc) -> None:
    """Delete a VPC once its Linodes' interfaces have left it: Linode refuses (400) while a
    Linode deleted a moment ago still has its interface there, so that is waited out."""
    ctx = run.ctx

    def in_use(exc: BaseException) -> bool:
        return isinstance(exc, CloudError) and exc.status == 400

    _again_while(ctx, in_use, ctx.settings.drain_timeout)(
        lambda: run.call("delete", lambda: ctx.cloud.delete_vpc(step.vpc_id))
    )
    run.report(step.describe())
    run.changed("vpc_deleted", step.label, step.vpc_id)


def _delete_placement_group(run: Run, step: DeletePlacementGroup) -> None:
    run.call("delete", lambda: run.ctx.cloud.delete_placement_group(step.group_id))
    run.report(step.describe())
    run.changed("placement_group_deleted", step.label, step.group_id)


def _delete_script(run: Run, step: DeleteStackScript) -> None:
    run.call("delete", lambda: run.ctx.cloud.delete_stackscript(step.script_id))
    run.report(step.describe())
    run.changed("stackscript_deleted", step.label, step.script_id)


def _clear_mark(run: Run, step: ClearRebuildMark) -> None:
    inst = run.instance(step.label)
    tags = tuple(t for t in inst.tags if not t.startswith(REBUILD_TAG))
    run.call("tags", lambda: run.ctx.cloud.set_tags(inst.id, tags))
    run.instances[step.label] = replace(inst, tags=tags)
    run.report(step.describe())
    if tags != inst.tags:
        run.changed("rebuild_finished", step.label, inst.id)


def _mark(run: Run, step: MarkInstance) -> None:
    run.call("tags", lambda: run.ctx.cloud.set_tags(step.linode_id, step.tags))
    run.report(step.describe())
    run.changed("linode_marked", step.label, step.linode_id)


def _mark_vpc(run: Run, step: MarkVpc) -> None:
    run.call("vpc", lambda: run.ctx.cloud.update_vpc(step.vpc_id, step.description))
    run.report(step.describe())
    run.changed("vpc_marked", step.label, step.vpc_id)


def _mark_rebuild(run: Run, step: MarkRebuild) -> None:
    """The rebuild mark names the newest event: a rebuild event after it says the Linode
    has its new disk (see swarmboot.rebuild)."""
    ctx = run.ctx
    since = run.call("events", ctx.cloud.last_event_id)
    run.call("tags", lambda: ctx.cloud.set_tags(step.linode_id, (*step.tags, rebuild_tag(since))))
    run.report(step.describe())
    run.changed("rebuild_marked", step.label, step.linode_id)


def _fence(run: Run, step: FenceNode) -> None:
    """Shut the Linode down; its region's API may not answer either, which is said and is
    not the end of the recovery (the step says so)."""
    try:
        run.call("shutdown", lambda: run.ctx.cloud.shutdown(step.linode_id))
    except CloudError as exc:
        run.ctx.reporter.failed(
            f"{step.label} could not be shut down ({exc.message}): if it comes back before "
            "it is rebuilt, `swarmboot recover` makes it leave the old swarm"
        )
        return
    run.report(step.describe())
    run.changed("linode_shut_down", step.label, step.linode_id)


RUNNERS: dict[type, Callable[[Run, Any], None]] = {
    MarkInstance: _mark,
    MarkVpc: _mark_vpc,
    MarkRebuild: _mark_rebuild,
    FenceNode: _fence,
    PublishStackScript: _publish,
    EnsureCloudFirewall: _ensure_firewall,
    SyncCloudFirewall: _sync_firewall,
    EnsureVpc: _ensure_vpc,
    DeleteVpc: _delete_vpc,
    EnsurePlacementGroup: _ensure_placement_group,
    AssignPlacementGroup: _assign_placement_group,
    SetKernel: _set_kernel,
    RebuildInstance: _rebuild,
    DeleteInstance: _delete,
    DeleteCloudFirewall: _delete_firewall,
    DeletePlacementGroup: _delete_placement_group,
    DeleteStackScript: _delete_script,
    ClearRebuildMark: _clear_mark,
}
