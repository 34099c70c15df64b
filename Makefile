# swarmboot: the commands a new user needs. `make demo` and `make test` set up what they use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the tests use on the host: debootstrap builds the Debian roots the
# StackScripts run in, zstd packs them, gpg makes a key that is not Docker's, iproute2 and
# util-linux make the namespaces, openssh-server's sshd answers the SSH tests, and OpenSSH's
# client checks the lab's nodes. The lab needs no Docker on the host: its nodes run the
# docker.io of their own image. Debian's haproxy checks the load balancers' configuration
# (haproxy -c); it and busybox also make the lab's load balancer and application images.
HOST_PACKAGES := debootstrap zstd gpg iproute2 util-linux ca-certificates openssh-server openssh-client haproxy busybox
# What make vmtest needs on the host: qemu (software emulation), GRUB's rescue image tools.
VM_PACKAGES := qemu-system-x86 qemu-utils grub-pc-bin grub-common xorriso mtools
# A hard limit for make vmtest (seconds); each qemu also has its own and is ended by its PID.
VMTEST_LIMIT ?= 2700
SHELL_SCRIPTS := stackscripts/*.sh tests/debian/enter-root.sh tests/debian/systemctl-shim .ci/run examples/demo.sh tests/vm/guest-check.sh tests/vm/guest-first-boot.sh tests/vm/guest-cloud-init-first-boot.sh \
  swarmboot/lab/files/node-init.sh swarmboot/lab/files/systemctl swarmboot/lab/files/grub-probe

.PHONY: help venv host-deps vm-deps vmtest vmtest-full test test-fast demo sim bench drills drills-lab drills-upgrade-lab security fidelity fidelity-prepare stackscripts lint format docs clean

help:
	@echo "make demo          form the example swarm for real in the lab, show it, tear it down (KEEP=1 keeps it)"
	@echo "make test          set up and run lint and every test (as root: the Debian runs too)"
	@echo "make vmtest        boot the StackScript's disk under qemu through GRUB (as root; ~10 min)"
	@echo "make vmtest-full   the StackScript, then the cloud-init user data, on a VM's first boot (release check)"
	@echo "make test-fast     the tests that need neither root nor the Debian mirror"
	@echo "make sim           serve the Linode API simulator on 127.0.0.1:8765 (state in .cache/)"
	@echo "make bench         measure the simulator and up (requests/s, memory, wall time)"
	@echo "make drills        DRILLS (200) seeded fault drills on each interface generation: up, node rebuild, down killed and run again"
	@echo "make drills-lab    LAB_DRILLS (5) of them on real swarm nodes in the lab (as root),"
	@echo "                   then the upgrade drill"
	@echo "make drills-upgrade-lab  the upgrade drill alone: every node upgraded under load (as root)"
	@echo "make security      the security sweep: hostile specs, command lines, API requests, host keys, trust"
	@echo "make fidelity      the official clients' own integration suites against the simulator (release check)"
	@echo "make fidelity-prepare API4=SDIST CLI=GITDIR|TARBALL  unpack those suites into .cache/fidelity/"
	@echo "make stackscripts  render templates/ into stackscripts/"
	@echo "make lint          ruff, shellcheck and the freshness of stackscripts/ and docs/"
	@echo "make docs          regenerate docs/cli.md from the commands' --help"
	@echo "make venv          create .venv with swarmboot and its dev tools"

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "swarmboot needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# $(call apt_missing,PACKAGES,WHO,ON_FAIL): install the PACKAGES not installed yet (as root),
# or say that WHO needs them and run ON_FAIL (true: go on; exit 1: stop).
define apt_missing
	@missing=$$(for p in $(1); do \
	    dpkg-query -W -f='$${db:Status-Status}\n' $$p 2>/dev/null | grep -qx installed || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing $$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	  else \
	    echo "$(2) need: $$missing (install them as root: apt-get install $$missing)"; $(3); \
	  fi; \
	fi
endef

host-deps:
	$(call apt_missing,$(HOST_PACKAGES),The Debian and lab tests,true)

vm-deps:
	$(call apt_missing,$(VM_PACKAGES),make vmtest and its VM,exit 1)

vmtest: venv host-deps vm-deps
	SWARMBOOT_VMTEST=1 timeout --kill-after=30 $(VMTEST_LIMIT) $(BIN)/pytest -m vm tests/vm

vmtest-full: venv host-deps vm-deps
	SWARMBOOT_VMTEST_FULL=1 timeout --kill-after=30 3600 $(BIN)/pytest -s -m vm tests/vm/test_vm_full.py

# The machine tier (Debian roots, lab swarms, VMs) beside the fast tier: tests/tiers.py.
test: venv host-deps lint
	$(BIN)/python -m tests.tiers

test-fast: venv
	$(BIN)/pytest -m "not debian and not lab"

demo: venv host-deps
	./examples/demo.sh

sim: venv
	@mkdir -p .cache
	SWARMBOOT_SIM_TOKEN=$${SWARMBOOT_SIM_TOKEN:-demo-token} $(BIN)/swarmboot sim --state .cache/sim-state.json --time-scale 0.1

bench: venv
	$(BIN)/python -m tests.bench.sim_bench
	@echo
	$(BIN)/python -m tests.bench.up_bench

# Fault drills on the records-only simulator, and in the lab; not while a lab runs (the lab
# routes the drills' addresses).
DRILLS ?= 200
LAB_DRILLS ?= 5
drills: venv
	$(BIN)/python -m tests.drills.drill $(DRILLS)

drills-lab: venv host-deps
	$(BIN)/python -m tests.drills.lab_drill $(LAB_DRILLS)
	$(BIN)/python -m tests.drills.upgrade_drill

# The upgrade drill alone: every node upgraded under load, `upgrade` SIGKILLed and run again.
drills-upgrade-lab: venv host-deps
	$(BIN)/python -m tests.drills.upgrade_drill $(SEED)

# Hostile inputs against swarmboot, per category: how many were tried, refused properly,
# accepted as valid (and why harmless), and each one NOT refused; exit 1 if any was not.
security: venv
	$(BIN)/python -m tests.security.sweep

# The official clients' integration suites (linode_api4's from its sdist, linode-cli's from
# its repository), unchanged, against a fresh simulator: one row per file. Fetches nothing;
# fidelity-prepare unpacks them (and their venv) into .cache/fidelity/ once. A release check:
# CI has neither source, and a run takes 15 to 20 minutes (the suites' own waits).
API4 ?=
CLI ?=
CLI_REF ?= v5.68.0
fidelity: venv
	$(BIN)/python -m tests.fidelity.run --failures

fidelity-prepare: venv
	@test -n "$(API4)" -a -n "$(CLI)" || { echo "usage: make fidelity-prepare API4=linode_api4-5.48.0.tar.gz CLI=linode-cli.git [CLI_REF=v5.68.0]"; exit 2; }
	$(BIN)/python -m tests.fidelity.prepare --api4 "$(API4)" --cli "$(CLI)" --cli-ref "$(CLI_REF)"

stackscripts: venv
	$(BIN)/swarmboot render

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/shellcheck $(SHELL_SCRIPTS)
	$(BIN)/swarmboot render --check

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

docs: venv
	$(BIN)/typer swarmboot.cli utils docs --name swarmboot --output docs/cli.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
