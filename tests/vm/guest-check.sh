#!/bin/bash
# Runs once in the guest at boot (swarmboot-vmcheck.service), prints what it finds as
# "VMCHECK key=value" lines for the host to read, then powers off. It writes to the second
# serial port: the first is the console, where a getty starting up hangs up other writers.
exec >/dev/ttyS1 2>&1
say() { printf 'VMCHECK %s=%s\n' "$1" "$2"; }
yes_no() { if "$@" >/dev/null 2>&1; then echo yes; else echo no; fi; }

echo VMCHECK_BEGIN
say kernel "$(uname -r)"
say kernel_is_debian "$(yes_no grep -q 'Debian' /proc/version)"
say kernel_package "$(dpkg-query -W -f='${db:Status-Status}' "linux-image-$(uname -r)" 2>/dev/null || echo none)"
say cmdline "$(cat /proc/cmdline)"
if ip link add vx0 type vxlan id 42 dstport 4789 dev lo 2>/dev/null; then
  say vxlan yes
  ip link del vx0
else
  say vxlan no
fi
say docker "$(timeout 120 docker info --format '{{.ServerVersion}}' 2>/dev/null || echo none)"
# The StackScript once more, as on any later run: it must change nothing, and its probes now
# see the booted kernel (the disk was provisioned in a chroot on the host's kernel).
set -a
# shellcheck disable=SC1091
. /root/.vmcheck-env
set +a
bash /root/StackScript >/var/log/vmcheck-stackscript.log 2>&1
say stackscript_rc "$?"
echo "VMCHECK_STATUS $(tr -d '\n' </var/lib/swarmboot/status.json)"
say nft_table "$(yes_no nft list table inet swarmboot)"
say ssh_active "$(systemctl is-active ssh)"
while read -r key value; do
  say "sshd_$key" "$value"
done < <(sshd -T 2>/dev/null | grep -E '^(passwordauthentication|kbdinteractiveauthentication|permitrootlogin|pubkeyauthentication) ')
# A login that offers only a password: the server must answer that it takes keys alone.
printf '127.0.0.1 %s\n' "$(cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)" >/run/vmcheck-known
denied=$(timeout 30 ssh -o BatchMode=yes -o UserKnownHostsFile=/run/vmcheck-known \
  -o PreferredAuthentications=password,keyboard-interactive -o PubkeyAuthentication=no \
  root@127.0.0.1 true 2>&1 | tail -n1)
say password_login "$denied"
echo VMCHECK_END
systemctl --no-block poweroff
