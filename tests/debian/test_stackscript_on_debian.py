"""Each rendered StackScript, run for real in a Debian root of its release.

One node per script goes through what a Linode would: bad input first (refused before anything
changes), a Docker repository whose key is not Docker's (refused), the real first run, a second
run that must change nothing, and drift that a third run repairs.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swarmboot import facts
from swarmboot.nodestatus import parse_status

from ..conftest import STACKSCRIPTS
from . import harness

pytestmark = pytest.mark.debian

RELEASES = {"debian12-swarm-node.sh": "bookworm", "debian13-swarm-node.sh": "trixie"}
# What a node needs, with docker_source=debian.
NODE_PACKAGES = (
    "linux-image-amd64",
    "grub-pc",
    "docker.io",
    "nftables",
    "apparmor",
    "openssh-server",
    "sudo",
)
MEMBERS = ("198.51.100.10", "198.51.100.11", "198.51.100.64/26")
# A key Linode would have put in place from the create call's authorized_keys.
ORCHESTRATOR_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOrchestratorOrchestratorOrchestrator00"
    " swarmboot@orchestrator"
)


def worker_fields(host_key_b64: str, admin_public: str) -> dict[str, str]:
    """A worker's StackScript fields, its admin key also for a sudo user `ops`."""
    return {
        "hostname": "itframe-eu-central-worker-1",
        "cluster": "itframe",
        "swarm_role": "worker",
        "zone": "eu-central",
        "admin_ssh_keys": admin_public + " ops",
        "admin_user": "ops",
        "docker_source": "debian",
        "swarm_members": ",".join(MEMBERS),
        "ssh_host_key": host_key_b64,
        "apt_upgrade": "yes",
    }


def authorize_orchestrator(node: harness.DebianNode) -> None:
    """What Linode puts in place from the create call's authorized_keys before the first
    boot's script runs."""
    ssh_dir = node.root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(ORCHESTRATOR_KEY + "\n")
    (ssh_dir / "authorized_keys").chmod(0o600)


def _ed25519() -> tuple[bytes, str]:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return private, public


def _not_dockers_key() -> bytes:
    """An armoured OpenPGP key that is not Docker's: Debian's archive keys."""
    with tempfile.TemporaryDirectory() as home:
        os.chmod(home, 0o700)
        gpg = ["gpg", "--homedir", home, "--batch", "--quiet"]
        subprocess.run(
            [*gpg, "--import", "/usr/share/keyrings/debian-archive-keyring.gpg"],
            check=True,
            capture_output=True,
        )
        return subprocess.run([*gpg, "--export", "--armor"], check=True, capture_output=True).stdout


def _kernel_can(netns: str, *command: str) -> bool:
    return (
        subprocess.run(
            ["ip", "netns", "exec", netns, *command], capture_output=True, check=False
        ).returncode
        == 0
    )


# Where the drift run finds the modprobe rule that disables ESP.
ESP_RULE_FILE = "etc/modprobe.d/disable-esp.conf"


@dataclass
class Provisioned:
    name: str
    node: harness.DebianNode
    host_public_key: str
    admin_public_key: str
    fields: dict[str, str]
    bad_role: harness.ScriptRun
    no_keys: harness.ScriptRun
    wrong_docker_key: harness.ScriptRun
    wrong_docker_packages: set[str]
    first: harness.ScriptRun
    second: harness.ScriptRun
    before_second: dict
    after_second: dict
    drift_repair: harness.ScriptRun
    shim_log: str
    kernel_has_vxlan: bool
    kernel_has_esp: bool


def _covered(items) -> list[ipaddress.IPv4Network]:
    return list(ipaddress.collapse_addresses(ipaddress.IPv4Network(i) for i in items))


def _installed(node: harness.DebianNode, *packages: str) -> set[str]:
    out = subprocess.run(
        [
            "chroot",
            str(node.root),
            "dpkg-query",
            "-W",
            "-f=${Package} ${db:Status-Status}\\n",
            *packages,
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {line.split()[0] for line in out.splitlines() if line.endswith(" installed")}


def _provision(name: str, workdir: Path) -> Provisioned:
    """A node of `name`'s release taken through bad input, a foreign Docker key, the first
    run, a second run and drift; the node is left open for the tests to look at."""
    script = (STACKSCRIPTS / name).read_text()
    host_private, host_public = _ed25519()
    _, admin_public = _ed25519()
    fields = worker_fields(base64.b64encode(host_private).decode(), admin_public)
    node = harness.DebianNode(RELEASES[name], workdir)
    try:
        # Bad input: refused before anything changes.
        bad_role = node.run_script(script, {**fields, "swarm_role": "boss"})
        no_keys = node.run_script(script, {**fields, "admin_ssh_keys": ""})
        # A "Docker repository" whose key is not Docker's.
        node.serve(8080, {"/linux/debian/gpg": _not_dockers_key()})
        wrong = node.run_script(
            script,
            {
                **fields,
                "docker_source": "docker",
                "docker_repo_url": "http://127.0.0.1:8080/linux/debian",
            },
        )
        wrong_packages = _installed(node, "docker-ce", "docker.io", "linux-image-amd64")
        authorize_orchestrator(node)

        first = node.run_script(script, fields)
        before = node.snapshot()
        second = node.run_script(script, fields)
        after = node.snapshot()

        # Drift: a hand-edited daemon.json is put back and Docker restarted for it.
        daemon_json = node.root / "etc/docker/daemon.json"
        daemon_json.write_text('{"live-restore": true}\n')
        # And the modprobe rule of Linode's 2026 mitigation, which keeps esp4/esp6 from
        # loading: the ESP probe must name it (this kernel has no ESP either way).
        (node.root / "etc/modprobe.d").mkdir(parents=True, exist_ok=True)
        (node.root / ESP_RULE_FILE).write_text(
            "# CVE mitigation\ninstall esp4 /bin/false\ninstall esp6 /bin/false\n"
        )
        repair = node.run_script(script, fields)
        shim_log = (node.root / "var/log/systemctl-shim.log").read_text()
        vxlan = _kernel_can(
            node.netns,
            "ip",
            "link",
            "add",
            "t0",
            "type",
            "vxlan",
            "id",
            "7",
            "dstport",
            "4789",
            "dev",
            "lo",
        )
        esp = _kernel_can(
            node.netns,
            "ip",
            "xfrm",
            "state",
            "add",
            "src",
            "127.0.0.2",
            "dst",
            "127.0.0.2",
            "proto",
            "esp",
            "spi",
            "0x7",
            "mode",
            "transport",
            "aead",
            "rfc4106(gcm(aes))",
            "0x" + "11" * 20,
            "128",
        )
    except BaseException:
        node.close()
        raise
    return Provisioned(
        name=name,
        node=node,
        host_public_key=host_public,
        admin_public_key=admin_public,
        fields=fields,
        bad_role=bad_role,
        no_keys=no_keys,
        wrong_docker_key=wrong,
        wrong_docker_packages=wrong_packages,
        first=first,
        second=second,
        before_second=before,
        after_second=after,
        drift_repair=repair,
        shim_log=shim_log,
        kernel_has_vxlan=vxlan,
        kernel_has_esp=esp,
    )


@pytest.fixture(scope="module")
def _provisioned_all(tmp_path_factory) -> Iterator[dict[str, Provisioned]]:
    """Every release's node, provisioned at once."""
    yield from harness.per_release(_provision, RELEASES, tmp_path_factory)


@pytest.fixture(scope="module", params=sorted(RELEASES))
def provisioned(request, _provisioned_all) -> Provisioned:
    return _provisioned_all[request.param]


def test_bad_input_is_refused_before_anything_changes(provisioned):
    bad = provisioned.bad_role
    assert bad.returncode == 1, bad.output
    assert bad.status["phase"] == "failed"
    assert bad.status["error"] == "swarm_role: 'boss' is not one of manager, worker, lb"
    assert bad.status["changes"] == []
    assert "ERROR: swarm_role: 'boss' is not one of manager, worker, lb" in bad.log
    no_keys = provisioned.no_keys
    assert no_keys.returncode == 1
    assert no_keys.status["error"].startswith("no SSH key would let root in once passwords are off")
    assert no_keys.status["changes"] == []


def test_a_docker_repository_signed_by_another_key_is_refused(provisioned):
    run = provisioned.wrong_docker_key
    assert run.returncode == 1, run.output
    error = run.status["error"]
    assert error.startswith(
        "docker_repo_url: the key at http://127.0.0.1:8080/linux/debian/gpg has fingerprint '"
    )
    assert error.endswith(f"not Docker's {facts.DOCKER_APT_KEY_FINGERPRINT}: refusing to trust it")
    assert provisioned.wrong_docker_packages == set()
    for path in ("etc/apt/sources.list.d/docker.sources", "etc/apt/keyrings/docker.asc"):
        assert not (provisioned.node.root / path).exists()


def test_first_run_installs_and_reports_done(provisioned):
    first = provisioned.first
    assert first.returncode == 0, first.output[-4000:]
    status = first.status
    assert status["phase"] == "done" and status["error"] is None
    assert status["script"] == provisioned.name
    assert (status["hostname"], status["role"], status["zone"], status["cluster"]) == (
        "itframe-eu-central-worker-1",
        "worker",
        "eu-central",
        "itframe",
    )
    assert status["vxlan_ok"] is provisioned.kernel_has_vxlan is True
    assert status["esp_ok"] is provisioned.kernel_has_esp
    assert status["docker_ok"] is True and status["firewall_ok"] is True
    assert _installed(provisioned.node, *NODE_PACKAGES) == set(NODE_PACKAGES)
    package_version = subprocess.run(
        ["chroot", str(provisioned.node.root), "dpkg-query", "-W", "-f=${Version}", "docker.io"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert package_version.startswith(status["docker_version"])
    assert status["finished_at"] >= status["started_at"]


def test_status_file_reads_as_a_node_on_the_wrong_kernel(provisioned):
    # The chroot runs this machine's kernel, not the Debian one it installed: exactly what the
    # provisioner must catch on a Linode still booting the provider's kernel.
    status = parse_status(json.dumps(provisioned.first.status))
    kernels = sorted(
        p.name.removeprefix("vmlinuz-") for p in (provisioned.node.root / "boot").glob("vmlinuz-*")
    )
    assert status.newest_kernel == kernels[-1]
    assert status.distro_kernel is False and status.reboot_required is True
    problems = status.problems(require_esp=False)
    assert len(problems) == 1 and problems[0].startswith("not on the GRUB kernel")


def test_grub_boots_the_debian_kernel_on_the_serial_console(provisioned):
    root = provisioned.node.root
    dropin = (root / "etc/default/grub.d/50-swarmboot.cfg").read_text()
    assert f'GRUB_CMDLINE_LINUX="console={facts.SERIAL_CONSOLE} net.ifnames=0"' in dropin
    assert "GRUB_TERMINAL=serial" in dropin
    grub_cfg = (root / "boot/grub/grub.cfg").read_text()
    version = provisioned.first.status["newest_kernel"]
    assert f"/boot/vmlinuz-{version}" in grub_cfg
    assert f"/boot/initrd.img-{version}" in grub_cfg
    assert f"console={facts.SERIAL_CONSOLE}" in grub_cfg
    assert "serial --speed=19200 --unit=0 --word=8 --parity=no --stop=1" in grub_cfg
    assert "terminal_input serial" in grub_cfg and "set timeout=5" in grub_cfg


def test_docker_is_configured_for_swarm(provisioned):
    root = provisioned.node.root
    daemon = json.loads((root / "etc/docker/daemon.json").read_text())
    assert daemon["live-restore"] is False
    assert daemon["log-driver"] == "json-file" and daemon["log-opts"]["max-file"] == "5"
    assert (root / "etc/systemd/system/multi-user.target.wants/docker.service").is_symlink()


def test_ssh_takes_keys_only_and_offers_the_pinned_host_key(provisioned):
    node = provisioned.node
    effective = node.chroot("/bin/sh", "-c", "mkdir -p /run/sshd && sshd -T").stdout.splitlines()
    for setting in (
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "permitrootlogin without-password",
        "pubkeyauthentication yes",
        "permitemptypasswords no",
    ):
        assert setting in effective
    assert [s for s in effective if s.startswith("hostkey ")] == [
        "hostkey /etc/ssh/ssh_host_ed25519_key"
    ]
    pub = (node.root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2]
    assert pub == provisioned.host_public_key.split()[:2]
    assert oct((node.root / "etc/ssh/ssh_host_ed25519_key").stat().st_mode & 0o777) == "0o600"
    root_keys = (node.root / "root/.ssh/authorized_keys").read_text().splitlines()
    assert root_keys[0] == ORCHESTRATOR_KEY  # the orchestrator keeps its way in
    assert f"{provisioned.admin_public_key} ops" in root_keys
    ops_keys = (node.root / "home/ops/.ssh/authorized_keys").read_text()
    assert f"{provisioned.admin_public_key} ops" in ops_keys
    node.chroot("visudo", "-cf", "/etc/sudoers.d/90-swarmboot-admin")
    assert "sudo" in node.chroot("id", "-nG", "ops").stdout.split()


def test_hostname_and_hosts(provisioned):
    root = provisioned.node.root
    assert (root / "etc/hostname").read_text() == "itframe-eu-central-worker-1\n"
    hosts = (root / "etc/hosts").read_text()
    assert "127.0.1.1 itframe-eu-central-worker-1" in hosts
    assert f"127.0.0.1\t{harness.MIRROR}" in hosts  # lines it does not manage stay


def test_firewall_rules_are_loaded(provisioned):
    # Read back from the kernel by the node's own nft, in the node's network namespace.
    listing = provisioned.node.chroot("nft", "-j", "list", "table", "inet", facts.NFT_TABLE)
    ruleset = json.loads(listing.stdout)["nftables"]
    chain = next(e["chain"] for e in ruleset if "chain" in e)
    assert (chain["hook"], chain["policy"]) == ("input", "drop")
    members = next(
        e["set"] for e in ruleset if "set" in e and e["set"]["name"] == facts.NFT_MEMBERS_SET
    )
    elements = [
        e if isinstance(e, str) else f"{e['prefix']['addr']}/{e['prefix']['len']}"
        for e in members["elem"]
    ]
    # The set merges adjacent addresses (auto-merge): compare the addresses it covers.
    assert _covered(elements) == _covered(MEMBERS)
    rules = provisioned.node.chroot("nft", "list", "chain", "inet", facts.NFT_TABLE, "input")
    rules = rules.stdout
    assert "tcp dport 22 accept" in rules
    for port in facts.SWARM_PORTS:
        assert (
            f"ip saddr @{facts.NFT_MEMBERS_SET} {port.protocol} dport {port.number} accept" in rules
        )
    assert f"ip saddr @{facts.NFT_MEMBERS_SET} meta l4proto esp accept" in rules
    root = provisioned.node.root
    assert (root / "etc/systemd/system/sysinit.target.wants/nftables.service").is_symlink()
    stop = (root / "etc/systemd/system/nftables.service.d/swarmboot.conf").read_text()
    assert f"ExecStop=/usr/sbin/nft delete table inet {facts.NFT_TABLE}" in stop


def test_progress_goes_to_the_log_and_the_serial_console(provisioned):
    first = provisioned.first
    assert "swarmboot: done: " in first.log
    last = [line for line in first.log.splitlines() if "swarmboot: done: " in line][-1]
    assert last in first.console
    assert "swarmboot: changed: /etc/docker/daemon.json" in first.console


def test_second_run_changes_nothing(provisioned):
    second = provisioned.second
    assert second.returncode == 0, second.output
    assert second.status["phase"] == "done"
    assert second.status["changes"] == []
    assert "done: 0 change(s)" in second.log
    before, after = provisioned.before_second, provisioned.after_second
    differences = sorted(
        [f"changed {p}" for p in before if p in after and before[p] != after[p]]
        + [f"added {p}" for p in after if p not in before]
        + [f"removed {p}" for p in before if p not in after]
    )
    assert differences == []
    assert not any((provisioned.node.root / "var/lib/swarmboot/pending").iterdir())


def test_the_esp_probe_names_a_modprobe_rule_that_disables_esp(provisioned):
    """Without the rule, the kernel's own answer; with it (the drift run), the rule and its
    file, and the refusal a node on it gets says so."""
    first, repair = provisioned.first.status, provisioned.drift_repair.status
    if provisioned.kernel_has_esp:
        pytest.skip("this kernel has ESP loaded: the probe passes whatever modprobe says")
    assert first["esp_ok"] is False and "modprobe" not in first["esp_error"]
    assert first["esp_error"].startswith("the kernel refused an IPsec ESP state: ")
    assert repair["esp_ok"] is False
    assert repair["esp_error"] == (
        f"esp4/esp6 are disabled by modprobe configuration (/{ESP_RULE_FILE}: install esp4 "
        "/bin/false), as a kernel vulnerability mitigation does"
    )
    (problem,) = [
        p for p in parse_status(json.dumps(repair)).problems(require_esp=True) if "ESP" in p
    ]
    assert problem.endswith(repair["esp_error"])


def test_drift_is_repaired_and_docker_restarted_for_it(provisioned):
    repair = provisioned.drift_repair
    assert repair.returncode == 0, repair.output
    assert repair.status["changes"] == ["/etc/docker/daemon.json"]
    daemon = json.loads((provisioned.node.root / "etc/docker/daemon.json").read_text())
    assert daemon["live-restore"] is False
    restarts = [
        line
        for line in provisioned.shim_log.splitlines()
        if line.endswith("systemctl restart docker")
    ]
    assert len(restarts) == 2  # once for the first run's new settings, once for the repair
