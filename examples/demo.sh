#!/bin/bash
# `make demo`: the example cluster formed for real on this machine, then torn down.
#
# As root, with the lab's tools: starts the Linode API simulator with the lab (each Linode
# becomes a real node here: its own namespaces, sshd, Docker), runs `swarmboot up` on
# examples/itframe-lab.toml, prints the status table and the real `docker node ls` from a
# manager (over OpenSSH, host keys checked against their pins), then deletes the cluster and
# stops the simulator. KEEP=1 leaves both running and says how to use and stop them.
# Elsewhere it falls back to the records-only simulator (Linodes as records, no nodes) and
# shows what `up` would do there, saying why (LAB=0 asks for that on purpose).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/.venv/bin
keep=${KEEP:-0}

work=$(mktemp -d /tmp/swarmboot-demo.XXXXXX)
chmod 700 "$work"
ssh-keygen -q -t ed25519 -N '' -C swarmboot-demo -f "$work/id_ed25519"
# The simulator's token reaches it and swarmboot through the environment, never argv.
SWARMBOOT_SIM_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export SWARMBOOT_SIM_TOKEN
(umask 077 && printf '%s\n' "$SWARMBOOT_SIM_TOKEN" >"$work/token")
export SWARMBOOT_LAB_CACHE=${SWARMBOOT_LAB_CACHE:-$PWD/.cache}

why_no_lab=""
if [[ ${LAB:-1} == 0 ]]; then
  why_no_lab="LAB=0 asks for the records-only simulator"
elif [[ $(id -u) != 0 ]]; then
  why_no_lab="the lab needs root (namespaces, mounts, a bridge)"
else
  for tool in ip nsenter unshare debootstrap ssh; do
    command -v "$tool" >/dev/null || why_no_lab="the lab needs $tool (make host-deps as root)"
  done
fi

sim_pid=""
stop_sim() {
  if [[ -n $sim_pid ]] && kill -0 "$sim_pid" 2>/dev/null; then
    kill -INT "$sim_pid"
    wait "$sim_pid" || true
  fi
  sim_pid=""
}

start_sim() {
  "$bin/swarmboot" sim --port 0 --time-scale 0.05 "$@" >"$work/sim.out" 2>"$work/sim.err" &
  sim_pid=$!
  for _ in $(seq 6000); do
    url=$(head -n1 "$work/sim.out")
    [[ -n $url ]] && return 0
    if ! kill -0 "$sim_pid" 2>/dev/null; then
      cat "$work/sim.err" >&2
      sim_pid=""
      return 1
    fi
    sleep 0.1
  done
  echo "the simulator did not start within 10 minutes: see $work/sim.err" >&2
  return 1
}

cleanup() {
  local rc=$?
  if [[ $keep == 1 && $rc == 0 ]]; then return; fi
  stop_sim
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z $why_no_lab ]]; then
  echo "==> Starting the Linode API simulator with the lab (the node image is built once: a few minutes)"
  start_sim --lab
  echo "    $url"
  echo "==> swarmboot up examples/itframe-lab.toml"
  "$bin/swarmboot" up examples/itframe-lab.toml --api-url "$url" --ssh-key "$work/id_ed25519"
  echo
  echo "==> swarmboot status examples/itframe-lab.toml"
  "$bin/swarmboot" status examples/itframe-lab.toml --api-url "$url" --ssh-key "$work/id_ed25519"
  "$bin/swarmboot" -q known-hosts examples/itframe-lab.toml --api-url "$url" \
    --ssh-key "$work/id_ed25519" >"$work/known_hosts"
  manager=$("$bin/swarmboot" -q status examples/itframe-lab.toml --api-url "$url" \
    --ssh-key "$work/id_ed25519" --json |
    "$bin/python" -c 'import json, sys; print(next(r["ipv4"] for r in json.load(sys.stdin)["nodes"] if r["role"] == "manager"))')
  ssh_opts=(-i "$work/id_ed25519" -o "UserKnownHostsFile=$work/known_hosts"
    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes)
  echo
  echo "==> docker node ls, on $manager (OpenSSH, host key checked against its pin)"
  ssh "${ssh_opts[@]}" "root@$manager" docker node ls
  echo
  echo "==> docker network ls --filter driver=overlay"
  ssh "${ssh_opts[@]}" "root@$manager" docker network ls --filter driver=overlay
  if [[ $keep == 1 ]]; then
    echo
    echo "The cluster is still running (KEEP=1). In $work:"
    echo "  export SWARMBOOT_SIM_TOKEN=\$(cat $work/token)"
    echo "  .venv/bin/swarmboot status examples/itframe-lab.toml --api-url $url --ssh-key $work/id_ed25519"
    echo "  ssh -i $work/id_ed25519 -o UserKnownHostsFile=$work/known_hosts root@$manager docker node ls"
    echo "Stop it (the nodes go with it): kill -INT $sim_pid; rm -r $work"
    exit 0
  fi
  echo
  echo "==> swarmboot down examples/itframe-lab.toml --yes"
  "$bin/swarmboot" down examples/itframe-lab.toml --api-url "$url" --ssh-key "$work/id_ed25519" --yes
  stop_sim
  left=$(ip netns list | grep -c '^swblab-' || true)
  if [[ $left != 0 ]]; then
    echo "==> The simulator stopped, but $left lab namespace(s) are left: ip netns list" >&2
    exit 1
  fi
  echo "==> The simulator and its lab are stopped: no lab namespace is left."
else
  echo "==> No lab here: $why_no_lab."
  echo "    Falling back to the records-only simulator: Linodes are records, no node boots,"
  echo "    so this shows what up would do rather than doing it."
  start_sim
  echo "    $url"
  echo "==> swarmboot stackscript publish"
  "$bin/swarmboot" stackscript publish --api-url "$url"
  echo "==> swarmboot plan examples/itframe.toml"
  "$bin/swarmboot" plan examples/itframe.toml --api-url "$url" --ssh-key "$work/id_ed25519"
  stop_sim
  echo "==> Run it as root (sudo make demo) to form the swarm for real in the lab."
fi
