#!/bin/bash
# node-init.sh NODE_DIR IMAGE MODE CGROUP_PARENT
# PID 1 of a lab node. The lab has put this process in the node's network namespace and in
# fresh mount, PID and UTS namespaces: every mount below, and every process started here
# (sshd, dockerd, the StackScript), ends when this process ends.
# MODE is "first" (the first boot of a freshly deployed disk: Linode runs the StackScript, or
# cloud-init runs the user data the lab put in a NoCloud seed) or "boot" (a later boot: the
# services come up as enabled).
set -euo pipefail
node=$1 image=$2 mode=$3 cgroup_parent=$4
root=$node/merged

mount -t overlay overlay -o "lowerdir=$image,upperdir=$node/upper,workdir=$node/work" "$root"
mount -t proc proc "$root/proc"
# A sysfs of this network namespace, and the host's cgroup hierarchies for Docker.
mount -t sysfs sysfs "$root/sys"
mount --rbind /sys/fs/cgroup "$root/sys/fs/cgroup"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run"
mkdir -p "$root/run/lock" "$root/run/sshd"
# overlay2 cannot sit on overlayfs: Docker's data lives in a plain directory of the node.
mount --bind "$node/docker" "$root/var/lib/docker"
# The root is an overlay, not a Linode's /dev/sda: grub-probe answers as that disk would.
mount --bind "$(dirname "$0")/grub-probe" "$root/usr/sbin/grub-probe"
hostname "$(cat "$node/hostname")"
printf '%s\n' "$cgroup_parent" >"$root/run/swarmboot-lab-cgroup"

if [[ $mode == first ]]; then
  # A fresh disk has host keys of its own, as a Linode's does: the image's are not shared
  # between nodes. The one swarmboot passed in (already in the node's layer) is kept.
  for key in "$root"/etc/ssh/ssh_host_*_key; do
    name=${key##*/}
    [[ -e $node/upper/etc/ssh/$name ]] || rm -f "$key" "$key.pub"
  done
  [[ -e $root/etc/ssh/ssh_host_ed25519_key ]] ||
    chroot "$root" ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
fi
seed=$root/var/lib/cloud/seed/nocloud/user-data
if [[ $mode == first && -f $seed ]]; then
  # As a Linode made with user data boots: cloud-init's local and network stages come before
  # the SSH server (they put the pinned host key in place); each stage runs whatever the one
  # before it did, as systemd's units do.
  for stage in 'init --local' init; do
    # shellcheck disable=SC2086 # the stage is two words
    chroot "$root" cloud-init $stage >>"$node/cloud-init.out" 2>&1 </dev/null || true
  done
fi
chroot "$root" /usr/sbin/sshd -E /var/log/sshd-lab.log

if [[ $mode == first && -f $seed ]]; then
  # Then its config and final stages beside the SSH server: the final one runs the node
  # script (runcmd), once, as Linode runs a StackScript.
  {
    chroot "$root" cloud-init modules --mode=config || true
    chroot "$root" cloud-init modules --mode=final
  } >>"$node/cloud-init.out" 2>&1 </dev/null &
elif [[ $mode == first && -f $node/stackscript.env ]]; then
  # As Linode does: the StackScript runs once, with its fields in the environment (read from
  # a file, never from a command line).
  cp "$node/stackscript.env" "$root/root/.stackscript-env"
  rm -f "$node/stackscript.env"
  chroot "$root" /bin/bash -c 'set -a; . /root/.stackscript-env; rm -f /root/.stackscript-env; set +a; exec /bin/bash /root/StackScript' \
    >"$node/stackscript.out" 2>&1 </dev/null &
elif [[ -L $root/etc/systemd/system/multi-user.target.wants/docker.service ]]; then
  chroot "$root" /usr/local/sbin/systemctl start docker.service >>"$node/boot.out" 2>&1 || true
fi

: >"$node/ready"
exec sleep infinity
