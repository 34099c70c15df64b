#!/bin/bash
# enter-root.sh ROOT CONSOLE APT_ARCHIVES COMMAND...
# Run COMMAND chrooted in ROOT. The caller has put this process in the node's network namespace
# and in fresh mount, PID and UTS namespaces: the mounts below vanish with them, and every
# process COMMAND starts dies when it ends. CONSOLE stands in for the serial console.
set -euo pipefail
root=$1 console=$2 archives=$3
shift 3

mount -t proc proc "$root/proc"
# A sysfs of this network namespace, and the host's cgroup hierarchies for Docker.
mount -t sysfs sysfs "$root/sys"
mount --rbind /sys/fs/cgroup "$root/sys/fs/cgroup"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
if [[ -e $root/dev/ttyS0 ]]; then
  mount --bind "$console" "$root/dev/ttyS0"
fi
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run"
mkdir -p "$root/run/lock"
mount --bind "$archives" "$root/var/cache/apt/archives"
exec chroot "$root" "$@"
