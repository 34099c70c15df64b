"""The StackScript as Linode runs it: on the node's first boot, over its own network.

Run by `make vmtest-full` (SWARMBOOT_VMTEST_FULL=1, as root): a Linode-like Debian 12 image
(kernel and GRUB installed, StackScript not run) boots through the GRUB stand-in with qemu's
user network; the StackScript runs on first boot and reaches the Debian mirror itself,
the guest reboots through GRUB, and the boot-time checks run. For release checks: about a
quarter of an hour under software emulation.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from swarmboot.nodestatus import parse_status

from . import vm

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def full_boot():
    if os.environ.get("SWARMBOOT_VMTEST_FULL") != "1":
        pytest.skip("the full VM test runs with make vmtest-full")
    missing = vm.missing_tools()
    if os.geteuid() != 0 or missing:
        pytest.fail(f"make vmtest-full needs root and {', '.join(missing) or 'nothing else'}")
    started = time.monotonic()
    image = vm.build_image()
    built = time.monotonic() - started
    result = vm.boot(
        image,
        network=True,
        reboot=True,
        timeout=float(os.environ.get("SWARMBOOT_VM_TIMEOUT", "2400")),
    )
    print(
        f"\nvmtest-full: image built in {built:.0f} s ({image.stat().st_blocks * 512 >> 20} MiB "
        f"used of {vm.DISK_SIZE}); first boot's StackScript "
        f"{result.checks.get('first_boot_seconds')} s; boots and checks {result.seconds:.0f} s"
    )
    return result


def test_the_first_boot_runs_the_stackscript_and_the_reboot_comes_up_ready(full_boot):
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
