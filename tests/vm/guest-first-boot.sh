#!/bin/bash
# Stands in for Linode's first boot of a disk deployed with a StackScript: runs it once, as
# root, with its fields in the environment, then reboots (through GRUB, into whatever kernel
# the script left configured). Reports on the second serial port.
mkdir -p /var/lib/swarmboot-vm
set -a
# shellcheck disable=SC1091
. /root/.vmcheck-env
set +a
started=$(date +%s)
bash /root/StackScript >/var/log/stackscript-first-boot.log 2>&1
rc=$?
printf 'VMFIRST rc=%s seconds=%s\n' "$rc" "$(($(date +%s) - started))" >/dev/ttyS1
tail -n 20 /var/log/stackscript-first-boot.log | sed 's/^/VMFIRST_LOG /' >/dev/ttyS1
touch /var/lib/swarmboot-vm/first-boot-done
sync
systemctl --no-block reboot
