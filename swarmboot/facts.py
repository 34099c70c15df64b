"""Facts about Docker Swarm on Linode that the templates, the planner and the firewall share."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CLOUD_INIT_SCRIPT_DIR",
    "DOCKER_APT_KEY_FINGERPRINT",
    "ESP_PROTOCOL",
    "GRUB_KERNEL",
    "LOG_PATH",
    "MEMBERS_FILE",
    "METADATA_IPV4",
    "METADATA_IPV6",
    "NFT_MEMBERS_SET",
    "NFT_TABLE",
    "NODE_CERT_PATH",
    "NODE_ENV_FILE",
    "SERIAL_CONSOLE",
    "STATUS_PATH",
    "SWARM_PORTS",
    "Port",
]


@dataclass(frozen=True)
class Port:
    number: int
    protocol: str  # "tcp" or "udp"
    purpose: str


# Swarm's ports; they are opened to cluster members only, never to the world.
SWARM_PORTS: tuple[Port, ...] = (
    Port(2377, "tcp", "cluster management (managers)"),
    Port(7946, "tcp", "node gossip (memberlist)"),
    Port(7946, "udp", "node gossip (memberlist)"),
    Port(4789, "udp", "overlay network data (VXLAN)"),
)
# IPsec ESP, which carries an encrypted overlay network's traffic (`--opt encrypted`).
ESP_PROTOCOL = 50

# The config profile kernel that makes Linode boot the disk's own GRUB 2 configuration, and so
# the distribution kernel (Linode's own kernels once lacked vxlan).
GRUB_KERNEL = "linode/grub2"
# Lish reads the node's first serial port at 19200 baud.
SERIAL_CONSOLE = "ttyS0,19200n8"

# The fingerprint of the key that signs Docker's apt repository
# (https://docs.docker.com/engine/install/debian/).
DOCKER_APT_KEY_FINGERPRINT = "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"

# Where a node's StackScript reports: read over SSH by the provisioner.
STATUS_PATH = "/var/lib/swarmboot/status.json"
LOG_PATH = "/var/log/swarmboot-stackscript.log"
# A swarm node's own certificate, issued by the swarm's CA (read by `status`, over SSH).
NODE_CERT_PATH = "/var/lib/docker/swarm/certificates/swarm-node.crt"

# The node firewall: swarmboot's own nftables table, and the set of member addresses that
# may reach the swarm ports, kept in a file that swarmboot rewrites as the cluster changes.
NFT_TABLE = "swarmboot"
NFT_MEMBERS_SET = "swarm_members"
MEMBERS_FILE = "/etc/swarmboot/swarm-members.nft"

# With cloud-init as the bootstrap (cluster.bootstrap), the user data writes the node's script
# into this folder and its fields, as a StackScript's would reach it, into NODE_ENV_FILE (on
# /run, a tmpfs: never on the disk; the script's start removes it).
CLOUD_INIT_SCRIPT_DIR = "/var/lib/swarmboot/bootstrap"
NODE_ENV_FILE = "/run/swarmboot/node.env"
# Linode's Metadata service, as a node reaches it (its link-local addresses).
METADATA_IPV4 = "169.254.169.254"
METADATA_IPV6 = ("fd00:a9fe:a9fe::1", "fe80::a9fe:a9fe")
