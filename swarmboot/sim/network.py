"""Addresses for simulated Linodes: public and private IPv4 per region, IPv6 by SLAAC.

Each region's public range comes from the configuration (by default a /26 of the
documentation range 198.51.100.0/24); its first address is the gateway. IPv6 addresses are
made as SLAAC would, from the region's /64 and a MAC address derived from the instance id.
Routed IPv6 ranges (/64 and /56) come from a /48 per region in the upper half of the IPv6
prefix, apart from the SLAAC /64s in its lower half: 2001:db8:8000::/48 for the first
region of the catalogue, 2001:db8:8001::/48 for the next.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from swarmboot.sim import catalog
from swarmboot.sim.config import SimConfig

__all__ = ["AddressBook", "Exhausted", "NoRange"]


class NoRange(Exception):
    """The region has no address range configured."""


class Exhausted(Exception):
    """Every address of the region's range is taken."""


class AddressBook:
    def __init__(self, config: SimConfig) -> None:
        self._public = {r: ipaddress.IPv4Network(c) for r, c in config.public_ranges.items()}
        region_ids = [r["id"] for r in catalog.REGIONS]
        self._private = {
            rid: ipaddress.IPv4Network(config.private_range(rid, index))
            for index, rid in enumerate(region_ids)
        }
        v6 = ipaddress.IPv6Network(config.ipv6_prefix)
        subnets = v6.subnets(new_prefix=64)
        self._v6 = {rid: next(subnets) for rid in region_ids}
        upper = list(v6.subnets(prefixlen_diff=1))[1] if v6.prefixlen < 48 else None
        pools = upper.subnets(new_prefix=48) if upper is not None else iter(())
        self._range_pools = dict(zip(region_ids, pools, strict=False))
        self._taken: set[str] = set()

    def gateway(self, region: str) -> str:
        return str(self._public_net(region).network_address + 1)

    def public_network(self, region: str) -> ipaddress.IPv4Network:
        return self._public_net(region)

    def private_network(self, region: str) -> ipaddress.IPv4Network:
        return self._private[region]

    def _public_net(self, region: str) -> ipaddress.IPv4Network:
        net = self._public.get(region)
        if net is None:
            raise NoRange(region)
        return net

    def has_public_range(self, region: str) -> bool:
        return region in self._public

    def mark(self, addresses: Iterable[str | None]) -> None:
        """Take addresses already in use (from a loaded state)."""
        self._taken.update(a for a in addresses if a)

    def release(self, *addresses: str | None) -> None:
        for address in addresses:
            self._taken.discard(address)  # type: ignore[arg-type]

    def _take(self, net: ipaddress.IPv4Network, region: str) -> str:
        gateway = net.network_address + 1
        for host in net.hosts():
            if host == gateway:
                continue
            text = str(host)
            if text not in self._taken:
                self._taken.add(text)
                return text
        raise Exhausted(region)

    def take_public(self, region: str) -> str:
        return self._take(self._public_net(region), region)

    def take_private(self, region: str) -> str:
        return self._take(self._private[region], region)

    def slaac(self, region: str, instance_id: int) -> str:
        """The instance's SLAAC address (EUI-64 from a Linode-style MAC), as `addr/128`."""
        mac = (0xF23C91 << 24) | (instance_id & 0xFFFFFF)
        octets = mac.to_bytes(6, "big")
        eui = bytes([octets[0] ^ 0x02]) + octets[1:3] + b"\xff\xfe" + octets[3:]
        address = self._v6[region].network_address + int.from_bytes(eui, "big")
        return f"{address}/128"

    def ipv6_network(self, region: str) -> ipaddress.IPv6Network:
        return self._v6[region]

    def take_ipv6_range(
        self, region: str, prefix: int, taken: Iterable[ipaddress.IPv6Network]
    ) -> ipaddress.IPv6Network:
        """The first /`prefix` of the region's range pool that overlaps none of `taken`."""
        pool = self._range_pools.get(region)
        if pool is None:
            raise NoRange(region)
        used = [t for t in taken if t.overlaps(pool)]
        for candidate in pool.subnets(new_prefix=prefix):
            if not any(candidate.overlaps(t) for t in used):
                return candidate
        raise Exhausted(region)
