"""How a simulator behaves: timings, address ranges, limits, faults, backend."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from swarmboot.sim.faults import FaultConfig
from swarmboot.sim.ratelimit import RateLimits

__all__ = ["DEFAULT_PUBLIC_RANGES", "SimConfig", "Timings"]

# The documentation range 198.51.100.0/24 in /26 slices, one per region a swarm commonly spans.
# Other regions get a range with --public-range REGION=CIDR.
DEFAULT_PUBLIC_RANGES: dict[str, str] = {
    "eu-central": "198.51.100.0/26",
    "gb-lon": "198.51.100.64/26",
    "us-east": "198.51.100.128/26",
    "us-ord": "198.51.100.192/26",
}


class Timings(BaseModel):
    """How long each transition takes on a real Linode (seconds), times `scale`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provision: float = Field(default=35.0, ge=0)
    boot: float = Field(default=20.0, ge=0)
    shutdown: float = Field(default=10.0, ge=0)
    reboot: float = Field(default=30.0, ge=0)
    rebuild: float = Field(default=40.0, ge=0)
    scale: float = Field(default=1.0, ge=0)

    def of(self, step: str) -> float:
        return float(getattr(self, step)) * self.scale


class SimConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    token: SecretStr
    state_file: Path | None = None
    timings: Timings = Timings()
    rate_limits: RateLimits = RateLimits()
    faults: FaultConfig = FaultConfig()
    public_ranges: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_PUBLIC_RANGES))
    # Private addresses (192.168.128.0/17 on Linode, reachable within a region only).
    private_ranges: dict[str, str] = Field(default_factory=dict)
    ipv6_prefix: str = "2001:db8::/32"
    default_kernel: str = "linode/grub2"
    backend: str = "records"
    validate_spec: Path | None = None
    username: str = "swarmboot-sim"
    # Capabilities the catalogue does not offer for a region or image id (`--withhold`), as
    # where Linode has not rolled a service out: {"gb-lon": ("Metadata",)}.
    withheld: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # Seconds a connection may wait for its next request (or the rest of one) before it is
    # closed, as a real server closes an idle client's connection.
    idle_timeout: float = Field(default=60.0, gt=0, le=3600)

    @field_validator("public_ranges", "private_ranges")
    @classmethod
    def _networks(cls, value: dict[str, str]) -> dict[str, str]:
        seen: list[ipaddress.IPv4Network] = []
        for region, cidr in value.items():
            net = ipaddress.IPv4Network(cidr, strict=True)
            if net.num_addresses < 4:
                raise ValueError(f"{region}: {cidr} is too small (at least a /30)")
            clash = next((other for other in seen if other.overlaps(net)), None)
            if clash is not None:
                raise ValueError(f"{region}: {cidr} overlaps {clash}")
            seen.append(net)
        return value

    def private_range(self, region: str, index: int) -> str:
        """The region's private range: configured, or the index-th /24 of 192.168.128.0/17."""
        if region in self.private_ranges:
            return self.private_ranges[region]
        return str(list(ipaddress.IPv4Network("192.168.128.0/17").subnets(new_prefix=24))[index])
