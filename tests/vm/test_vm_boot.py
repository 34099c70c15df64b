"""The kernel swap, booted: the StackScript's disk comes up on Debian's kernel through GRUB.

Run by `make vmtest` (SWARMBOOT_VMTEST=1, as root, with qemu and GRUB's tools installed by
it); skipped otherwise. See tests/vm/vm.py for how the disk and the boot stand in for a
Linode's.
"""

from __future__ import annotations

import json
import os

import pytest

from swarmboot.nodestatus import parse_status

from . import vm

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def disk():
    if os.environ.get("SWARMBOOT_VMTEST") != "1":
        pytest.skip("the VM tests run with make vmtest")
    if os.geteuid() != 0:
        pytest.fail("make vmtest needs root (debootstrap, namespaces)")
    missing = vm.missing_tools()
    if missing:
        pytest.fail(
            f"make vmtest needs {', '.join(missing)}: apt-get install {' '.join(vm.HOST_PACKAGES)}"
        )
    return vm.build_disk()


@pytest.fixture(scope="module")
def grub_boot(disk):
    return vm.boot(disk, timeout=float(os.environ.get("SWARMBOOT_VM_TIMEOUT", "900")))


def test_the_node_boots_debians_kernel_through_grub(grub_boot):
    checks = grub_boot.checks
    assert grub_boot.finished, grub_boot.console[-3000:]
    assert checks["kernel_is_debian"] == "yes"
    assert checks["kernel_package"] == "installed"  # the kernel the StackScript installed
    assert "console=ttyS0,19200n8" in checks["cmdline"]  # GRUB's entry, as the script wrote it
    assert "root=/dev/sda" in checks["cmdline"]


def test_vxlan_docker_firewall_and_keys_only_ssh(grub_boot):
    checks = grub_boot.checks
    assert checks["vxlan"] == "yes"
    assert checks["docker"] not in ("", "none")
    assert checks["nft_table"] == "yes"
    assert checks["ssh_active"] == "active"
    assert checks["sshd_passwordauthentication"] == "no"
    assert checks["sshd_kbdinteractiveauthentication"] == "no"
    assert checks["sshd_permitrootlogin"] == "without-password"
    assert "Permission denied (publickey)" in checks["password_login"]


def test_status_json_says_done_and_the_readiness_check_agrees(grub_boot):
    assert grub_boot.checks["stackscript_rc"] == "0"
    report = parse_status(json.dumps(grub_boot.status), source="guest")
    assert report.phase == "done"
    assert report.distro_kernel is True and report.vxlan_ok is True
    assert report.changes == ()  # the run on the booted node changed nothing
    assert report.problems(require_esp=False) == ()


@pytest.fixture(scope="module")
def provider_boot(disk):
    kernel, initrd = vm.foreign_kernel()
    return vm.boot(
        disk,
        kernel=kernel,
        initrd=initrd,
        timeout=float(os.environ.get("SWARMBOOT_VM_TIMEOUT", "900")),
    )


def test_a_kernel_handed_in_from_outside_is_not_ready(provider_boot):
    """The negative control: the same disk on a kernel that is not the disk's (as a Linode
    whose config profile was left on the provider's kernel). swarmboot's readiness check,
    reading the status file the StackScript wrote there, refuses it and says how to fix it."""
    checks = provider_boot.checks
    assert provider_boot.finished, provider_boot.console[-3000:]
    assert checks["kernel_package"] != "installed"  # not a kernel the disk has
    assert "BOOT_IMAGE" not in checks["cmdline"]  # no GRUB on the way
    report = parse_status(json.dumps(provider_boot.status), source="guest")
    assert report.distro_kernel is False
    assert report.phase == "failed"  # without the disk's modules its firewall cannot load
    problems = " ".join(report.problems(require_esp=False))
    assert "linode/grub2" in problems, problems
    assert problems.startswith(f"not on the GRUB kernel: running {checks['kernel']},"), problems
