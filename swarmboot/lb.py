"""Load balancers per zone: HAProxy on the `lb` nodes, published on each node's own address.

`render_lb` (pure) turns the spec's `[lb]` section into one HAProxy configuration per zone
and one stack file, from `templates/lb/`. `deploy_lb` puts them on a manager and runs
`docker stack deploy` there (stacks are the docker CLI's; the SDK has none), then waits, through
the docker SDK, until every `lb` node of every zone runs its zone's HAProxy task. Each zone's
configuration is a swarm config named by its content's hash: a change makes a new config and the
service rolls onto it, one node at a time; configs no longer used are removed.
"""

from __future__ import annotations

import hashlib
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay

from swarmboot.cluster import Context, observe
from swarmboot.errors import ExitCode, SwarmbootError
from swarmboot.paths import templates_dir
from swarmboot.remote import RemoteError
from swarmboot.render import environment
from swarmboot.spec import Spec
from swarmboot.state import Observed

__all__ = [
    "LbBundle",
    "LbError",
    "LbZone",
    "deploy_lb",
    "endpoints",
    "lb_zones",
    "render_lb",
    "service_name",
    "stack_name",
]

# Where a manager keeps the rendered files for `docker stack deploy` (root's, mode 0700).
REMOTE_DIR = "/root/.swarmboot/lb"


class LbError(SwarmbootError):
    """The load balancers cannot be deployed as asked."""


class NoIpvs(LbError):
    exit_code = ExitCode.BAD_SPEC


@dataclass(frozen=True)
class LbZone:
    name: str  # the region
    config: str  # the swarm config's name: cluster, zone and a hash of its content
    file: str  # the HAProxy configuration's file name, next to the stack file
    text: str  # the HAProxy configuration


@dataclass(frozen=True)
class LbBundle:
    stack: str
    stack_file: str
    zones: tuple[LbZone, ...]

    def files(self) -> dict[str, str]:
        """File name -> content, as `docker stack deploy` reads them."""
        return {"stack.yml": self.stack_file, **{z.file: z.text for z in self.zones}}


def stack_name(spec: Spec) -> str:
    return f"{spec.cluster.name}-lb"


def service_name(spec: Spec, zone: str) -> str:
    """The swarm service of a zone's load balancers (the stack prefixes its services)."""
    return f"{stack_name(spec)}_lb-{zone}"


def lb_zones(spec: Spec) -> tuple[str, ...]:
    """The zones with load balancers: regions with an `lb` pool."""
    return tuple(
        region
        for region, settings in spec.regions.items()
        if any(p.role == "lb" and p.count for p in settings.pools)
    )


def _require(spec: Spec):
    if spec.lb is None:
        raise LbError(
            "the spec has no [lb] section",
            hint='add one, e.g. [lb] service = "app", port = 8080 (see examples/itframe.toml)',
        )
    return spec.lb


def render_lb(spec: Spec, templates: Path | None = None) -> LbBundle:
    """The HAProxy configuration of each zone and the stack file. Pure."""
    lb = _require(spec)
    env = environment((templates or templates_dir()) / "lb")
    zones = []
    for zone in lb_zones(spec):
        target = f"tasks.{lb.service}-{zone}" if lb.backends == "zone" else f"tasks.{lb.service}"
        text = env.get_template("haproxy.cfg.j2").render(
            cluster=spec.cluster.name,
            zone=zone,
            ports=lb.ports,
            backend=lb.service.replace(".", "_"),
            health_path=lb.health_path,
            servers=lb.servers,
            target=target,
            backend_port=lb.port,
        )
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        zones.append(
            LbZone(zone, f"{spec.cluster.name}-lb-{zone}-{digest}", f"haproxy-{zone}.cfg", text)
        )
    stack = env.get_template("stack.yml.j2").render(
        cluster=spec.cluster.name,
        stack=stack_name(spec),
        zones=zones,
        image=lb.image,
        ports=lb.ports,
        publish_mode=lb.publish_mode,
        network=spec.network_name,
    )
    return LbBundle(stack_name(spec), stack, tuple(zones))


def endpoints(spec: Spec, observed: Observed) -> dict[str, list[str]]:
    """Each zone's load balancer addresses: http://<lb node's public IPv4>:<port>."""
    if spec.lb is None:
        return {}
    out: dict[str, list[str]] = {zone: [] for zone in lb_zones(spec)}
    for node in spec.nodes():
        inst = observed.instance(node.label)
        if node.role != "lb" or inst is None or inst.ipv4_public is None:
            continue
        out[node.region] += [f"http://{inst.ipv4_public}:{port}" for port in spec.lb.ports]
    return out


def _check_ipvs(ctx: Context, observed: Observed) -> None:
    """The routing mesh needs IPVS on every node it publishes on: refuse where it is missing
    (Docker would accept the publish and nothing would answer)."""
    lacking = []
    for node in ctx.spec.nodes():
        inst = observed.instance(node.label)
        if node.role != "lb" or inst is None:
            continue
        found = ctx.remote(inst).run(
            "if modprobe ip_vs 2>/dev/null || [ -e /proc/net/ip_vs ]; then echo yes; "
            "else echo no; fi"
        )
        if found.strip() != "yes":
            lacking.append(node.label)
    if lacking:
        raise NoIpvs(
            f'lb.publish_mode = "ingress" needs IPVS, which the kernel of {", ".join(lacking)} '
            "lacks: the routing mesh would take the publish and answer nothing",
            hint='use publish_mode = "host" (the default: each load balancer answers on its own '
            "address and keeps its zone's traffic in its datacenter)",
        )


def _manager(ctx: Context, observed: Observed):
    if observed.swarm is None:
        raise LbError(
            f"{ctx.spec.cluster.name} has no swarm to deploy to", hint="run `swarmboot up` first"
        )
    inst = observed.instance(observed.swarm.manager)
    if inst is None:
        raise LbError("no manager of the swarm answers", hint="see `swarmboot status`")
    return ctx.remote(inst)


def deploy_lb(ctx: Context, *, timeout: float = 300.0) -> dict[str, list[str]]:
    """Deploy (or update) the load balancers and wait until each `lb` node runs its zone's
    task; their endpoints per zone."""
    spec = ctx.spec
    bundle = render_lb(spec)
    observed = observe(ctx)
    manager = _manager(ctx, observed)
    if spec.lb is not None and spec.lb.publish_mode == "ingress":
        _check_ipvs(ctx, observed)
    where = f"{REMOTE_DIR}/{bundle.stack}"
    manager.run(f"mkdir -p -m 0700 {REMOTE_DIR} {shlex.quote(where)}")
    for name, content in bundle.files().items():
        manager.put_file(f"{where}/{name}", content, mode=0o600)
    try:
        manager.run(
            f"cd {shlex.quote(where)} && docker stack deploy --prune -c stack.yml "
            f"{shlex.quote(bundle.stack)}",
            timeout=300,
        )
    except RemoteError as exc:
        raise LbError(f"docker stack deploy failed: {exc.message}") from None
    ctx.reporter.ok(
        f"Deployed stack {bundle.stack}: "
        + ", ".join(f"{z.name} (config {z.config})" for z in bundle.zones)
    )
    _wait_running(ctx, observed, manager, bundle, timeout)
    removed = ctx.swarm.remove_configs(
        manager, f"{spec.cluster.name}-lb-", keep={z.config for z in bundle.zones}
    )
    if removed:
        ctx.reporter.ok(f"Removed {len(removed)} config(s) no longer used: {', '.join(removed)}")
    return endpoints(spec, observed)


def _wait_running(ctx: Context, observed: Observed, manager, bundle: LbBundle, timeout: float):
    """Until every lb node of each zone runs that zone's task of the current config."""
    spec = ctx.spec
    wanted = {
        zone.name: {n.label for n in spec.nodes() if n.role == "lb" and n.region == zone.name}
        for zone in bundle.zones
    }
    why: dict[str, str] = {}
    started = time.monotonic()

    def missing() -> bool:
        why.clear()
        for zone in bundle.zones:
            tasks = ctx.swarm.service_tasks(manager, service_name(spec, zone.name))
            tasks = [t for t in tasks if zone.config in t.configs]  # of this configuration
            running = {t.hostname for t in tasks if t.state == "running" and t.current}
            for label in sorted(wanted[zone.name] - running):
                mine = [t for t in tasks if t.hostname == label]
                now = next((t for t in mine if t.current), None)
                failed = next((t for t in mine if t.error), None)
                text = now.state if now else "no task yet"
                if failed is not None:
                    text += f" (a task ended {failed.state}: {failed.error})"
                why[label] = text
        return bool(why)

    try:
        Retrying(
            retry=retry_if_result(bool),
            wait=lambda state: min(ctx.settings.poll_interval, 2.0),
            stop=stop_after_delay(timeout),
        )(missing)
    except RetryError:
        raise LbError(
            f"the load balancers are not all running after {timeout:.0f} s: "
            + "; ".join(f"{label}: {state}" for label, state in sorted(why.items())),
            hint="on a manager, `docker service ps --no-trunc SERVICE` shows each task and "
            "`docker service logs SERVICE` what HAProxy said; an image the nodes cannot pull "
            "shows as rejected",
        ) from None
    ctx.reporter.ok(
        f"Load balancers running on {sum(len(v) for v in wanted.values())} node(s) in "
        f"{len(wanted)} zone(s) ({time.monotonic() - started:.0f} s)"
    )
