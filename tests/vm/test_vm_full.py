"""The node script as Linode runs it: on the node's first boot, over its own network.

Run by `make vmtest-full` (SWARMBOOT_VMTEST_FULL=1, as root): a Linode-like Debian 12 image
(kernel and GRUB installed, script not run) boots through the GRUB stand-in with qemu's user
network; the StackScript runs on first boot and reaches the Debian mirror itself, the guest
reboots through GRUB, and the boot-time checks run. Then the same with the node's cloud-init
user data instead (cluster.bootstrap = "cloud-init"): the image carries Debian's cloud-init
and a NoCloud seed standing in for Linode's Metadata service, and cloud-init's own units run
the script on first boot under systemd. For release checks: about a quarter of an hour each
under software emulation.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from swarmboot.nodestatus import parse_status

from . import vm

pytestmark = pytest.mark.vm


def _full_boot(*, cloud_init: bool) -> vm.Boot:
    if os.environ.get("SWARMBOOT_VMTEST_FULL") != "1":
        pytest.skip("the full VM test runs with make vmtest-full")
    missing = vm.missing_tools()
    if os.geteuid() != 0 or missing:
        pytest.fail(f"make vmtest-full needs root and {', '.join(missing) or 'nothing else'}")
    started = time.monotonic()
    image = vm.build_image(cloud_init=cloud_init)
    built = time.monotonic() - started
    result = vm.boot(
        image,
        network=True,
        reboot=True,
        timeout=float(os.environ.get("SWARMBOOT_VM_TIMEOUT", "2400")),
    )
    print(
        f"\nvmtest-full{' (cloud-init)' if cloud_init else ''}: image built in {built:.0f} s "
        f"({image.stat().st_blocks * 512 >> 20} MiB used of {vm.DISK_SIZE}); first boot "
        f"{result.checks.get('first_boot_seconds')} s; boots and checks {result.seconds:.0f} s"
    )
    return result


@pytest.fixture(scope="module")
def full_boot() -> vm.Boot:
    return _full_boot(cloud_init=False)


@pytest.fixture(scope="module")
def cloud_init_boot() -> vm.Boot:
    return _full_boot(cloud_init=True)


def test_the_first_boot_runs_the_stackscript_and_the_reboot_comes_up_ready(full_boot):
    _comes_up_ready(full_boot)


def test_the_first_boot_runs_the_cloud_init_user_data_and_the_reboot_comes_up_ready(
    cloud_init_boot,
):
    _comes_up_ready(cloud_init_boot)  # first_boot_rc 0: cloud-init's status is done
    # The script cloud-init wrote is the StackScript, byte for byte.
    digest = hashlib.sha256(vm.SCRIPT.read_bytes()).hexdigest()
    assert cloud_init_boot.status["script_sha256"] == digest


def _comes_up_ready(full_boot: vm.Boot) -> None:
    checks = full_boot.checks
    assert checks.get("first_boot_rc") == "0", full_boot.console[-3000:]
    assert full_boot.finished, full_boot.console[-3000:]
    assert checks["kernel_is_debian"] == "yes" and checks["kernel_package"] == "installed"
    assert "BOOT_IMAGE=/boot/vmlinuz-" in checks["cmdline"]  # through GRUB
    assert "console=ttyS0,19200n8" in checks["cmdline"]
    assert checks["vxlan"] == "yes"
    assert checks["docker"] not in ("", "none")
    assert checks["nft_table"] == "yes"
    assert checks["sshd_passwordauthentication"] == "no"
    assert "Permission denied (publickey)" in checks["password_login"]
    report = parse_status(json.dumps(full_boot.status), source="guest")
    assert report.phase == "done" and report.distro_kernel and not report.reboot_required
    assert report.changes == ()  # the run after the reboot changed nothing
    assert report.problems(require_esp=False) == ()
