#!/bin/bash
# On a disk deployed with user data the first boot is cloud-init's own: its systemd units
# run the node script from the NoCloud seed (standing in for Linode's Metadata service). This
# runs after them, reports how cloud-init ended on the second serial port, and reboots once
# (through GRUB, into whatever kernel the script left configured), as the StackScript
# image's first boot does.
mkdir -p /var/lib/swarmboot-vm
cloud-init status --wait >/dev/null 2>&1
said=$(cloud-init status --long 2>&1)
rc=1
if grep -q '^status: done' <<<"$said"; then rc=0; fi
printf 'VMFIRST rc=%s seconds=%s\n' "$rc" "$(cut -d. -f1 /proc/uptime)" >/dev/ttyS1
{ printf '%s\n' "$said"; tail -n 20 /var/log/cloud-init-output.log; } |
  sed 's/^/VMFIRST_LOG /' >/dev/ttyS1
touch /var/lib/swarmboot-vm/first-boot-done
sync
systemctl --no-block reboot
