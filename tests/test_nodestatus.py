from __future__ import annotations

import json

import pytest

from swarmboot.nodestatus import StatusError, parse_status

DONE = {
    "schema": 1,
    "phase": "done",
    "script": "debian12-swarm-node.sh",
    "script_sha256": "ab",
    "hostname": "itframe-gb-lon-worker-1",
    "cluster": "itframe",
    "role": "worker",
    "zone": "gb-lon",
    "kernel_release": "6.1.0-56-amd64",
    "distro_kernel": True,
    "newest_kernel": "6.1.0-56-amd64",
    "reboot_required": False,
    "vxlan_ok": True,
    "esp_ok": True,
    "docker_ok": True,
    "docker_version": "20.10.24+dfsg1",
    "firewall_ok": True,
    "changes": [],
    "started_at": "2026-11-24T18:00:00Z",
    "finished_at": "2026-11-24T18:01:00Z",
    "error": None,
}


def status(**changes):
    return parse_status(json.dumps({**DONE, **changes}))


def test_a_finished_node_on_the_debian_kernel_is_ready():
    node = status()
    assert node.problems(require_esp=True) == ()
    assert node.role == "worker" and node.zone == "gb-lon"


def test_a_node_on_the_providers_kernel_is_not_on_the_grub_kernel():
    node = status(
        kernel_release="6.8.9-x86_64-linode165", distro_kernel=False, reboot_required=True
    )
    (problem,) = node.problems(require_esp=False)
    assert problem.startswith("not on the GRUB kernel: running 6.8.9-x86_64-linode165")
    assert "linode/grub2" in problem


def test_a_newer_installed_kernel_asks_for_a_reboot():
    node = status(newest_kernel="6.1.0-57-amd64", reboot_required=True)
    assert node.problems(require_esp=False) == (
        "running kernel 6.1.0-56-amd64 but 6.1.0-57-amd64 is installed; reboot",
    )


def test_esp_matters_only_for_an_encrypted_overlay():
    node = status(esp_ok=False)
    assert node.problems(require_esp=False) == ()
    assert node.problems(require_esp=True) == (
        "the kernel lacks IPsec ESP, which the encrypted overlay needs",
    )


def test_the_cause_of_a_missing_esp_is_named():
    rule = (
        "esp4/esp6 are disabled by modprobe configuration (/etc/modprobe.d/disable-esp.conf: "
        "install esp4 /bin/false), as a kernel vulnerability mitigation does"
    )
    node = status(esp_ok=False, esp_error=rule)
    assert node.problems(require_esp=True) == (
        f"the kernel lacks IPsec ESP, which the encrypted overlay needs: {rule}",
    )


def test_running_and_failed_phases():
    assert status(phase="running", finished_at=None).problems(require_esp=False) == (
        "the StackScript is still running",
    )
    failed = status(phase="failed", error="swarm_role: 'boss' is not one of manager, worker, lb")
    assert failed.problems(require_esp=False) == (
        "the StackScript failed: swarm_role: 'boss' is not one of manager, worker, lb",
    )


def test_failed_probes_are_each_named():
    node = status(vxlan_ok=False, docker_ok=None, firewall_ok=False)
    assert node.problems(require_esp=False) == (
        "the vxlan probe did not pass",
        "Docker does not answer",
        "the firewall is not loaded",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ("[]", "expected a JSON object"),
        (json.dumps({**DONE, "schema": 2}), "unknown schema 2"),
        (json.dumps({**DONE, "phase": "sleeping"}), "phase: Input should be"),
    ],
)
def test_unreadable_status_files_are_named(text, message):
    with pytest.raises(StatusError, match=message) as info:
        parse_status(text, source="node-1:/var/lib/swarmboot/status.json")
    assert str(info.value).startswith("node-1:/var/lib/swarmboot/status.json: ")


def test_a_script_that_failed_on_a_foreign_kernel_names_the_kernel_first():
    """What a node booted on a provider kernel reports (seen in make vmtest's negative
    control): the script failed for want of the disk's kernel modules; the fix is the kernel."""
    report = parse_status(
        json.dumps(
            {
                "schema": 1,
                "phase": "failed",
                "script": "debian12-swarm-node.sh",
                "hostname": "n1",
                "cluster": "c",
                "role": "worker",
                "zone": "eu-central",
                "kernel_release": "6.12.95+deb12-amd64",
                "distro_kernel": False,
                "newest_kernel": "6.1.0-56-amd64",
                "reboot_required": True,
                "error": "the firewall rules in /etc/nftables.conf do not load (nft -c)",
            }
        )
    )
    assert report.problems(require_esp=False) == (
        "not on the GRUB kernel: running 6.12.95+deb12-amd64, which is not a kernel installed "
        "on the node; set the config profile kernel to linode/grub2 and reboot",
        "the StackScript failed: the firewall rules in /etc/nftables.conf do not load (nft -c)",
    )
