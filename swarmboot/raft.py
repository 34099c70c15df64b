"""A manager's raft state, read from its write-ahead log: how far its log goes.

When the swarm has lost its quorum no manager answers for the cluster, and `docker info`
and `docker node inspect self` say nothing of raft's progress. The log itself does: swarmkit
keeps it in etcd's WAL format under `/var/lib/docker/swarm/raft/wal-v3-encrypted/`, where
only each entry's payload is encrypted; the entries' indexes and terms and raft's hard state
(term, vote, commit index) are plain. `parse_wal` reads them from a segment; the manager
whose log is furthest along is the one a new cluster is forced on.

The WAL format (etcd's `wal` package): frames of an 8-byte little-endian length (the low 56
bits; with the top bit set, bits 56-58 give the padding after the record) and a
`walpb.Record` protobuf {type=1, crc=2, data=3}. Types: 1 metadata, 2 entry
(`raftpb.Entry` {type=1, term=2, index=3, data=4}), 3 state (`raftpb.HardState` {term=1,
vote=2, commit=3}), 4 crc, 5 snapshot (`walpb.Snapshot` {index=1, term=2}). A preallocated
segment ends in zeros: a frame of length 0 ends it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["RaftStatus", "parse_wal", "raft_status"]

_ENTRY, _STATE, _SNAPSHOT = 2, 3, 5
_SEGMENT = re.compile(r"([0-9a-f]{16})-([0-9a-f]{16})\.(wal|snap)")


@dataclass(frozen=True, order=True)
class RaftStatus:
    """How far a manager's raft log goes; ordered newest last (commit, then last index)."""

    commit: int  # the highest index it knows to be committed
    last_index: int  # the last entry in its log
    term: int

    def describe(self) -> str:
        return f"raft index {self.last_index}, commit {self.commit}, term {self.term}"


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data):
            raise ValueError("a varint runs past the end")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def _fields(data: bytes) -> dict[int, int | bytes]:
    """A protobuf message's fields (the last of each number), varints and bytes only."""
    out: dict[int, int | bytes] = {}
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, kind = key >> 3, key & 7
        if kind == 0:
            out[number], at = _varint(data, at)
        elif kind == 2:
            size, at = _varint(data, at)
            out[number] = data[at : at + size]
            at += size
        elif kind == 5:
            at += 4
        elif kind == 1:
            at += 8
        else:
            raise ValueError(f"protobuf wire type {kind}")
    return out


def _int(fields: dict[int, int | bytes], number: int) -> int:
    value = fields.get(number, 0)
    return value if isinstance(value, int) else 0


def parse_wal(data: bytes, first_index: int = 0) -> RaftStatus:
    """The raft state one WAL segment records (`first_index`: the index its name gives, the
    log's next index when it was started). A record cut short by a crash ends it."""
    commit = term = 0
    last = max(first_index - 1, 0)
    at = 0
    while at + 8 <= len(data):
        frame = int.from_bytes(data[at : at + 8], "little")
        size = frame & ((1 << 56) - 1)
        padding = (frame >> 56) & 0x7 if frame >> 63 else 0
        if size == 0 or at + 8 + size > len(data):
            break
        try:
            record = _fields(data[at + 8 : at + 8 + size])
            kind = _int(record, 1)
            payload = record.get(3, b"")
            body = _fields(payload) if isinstance(payload, bytes) else {}
        except ValueError:
            break  # a torn write
        if kind == _ENTRY:
            last = _int(body, 3)  # a new leader may overwrite: the last record is the log
            term = max(term, _int(body, 2))
        elif kind == _STATE:
            commit = max(commit, _int(body, 3))
            term = max(term, _int(body, 1))
        elif kind == _SNAPSHOT:
            last = max(last, _int(body, 1))
            term = max(term, _int(body, 2))
        at += 8 + size + padding
    return RaftStatus(commit=commit, last_index=max(last, commit), term=term)


def raft_status(snapshots: list[str], segment: str, data: bytes) -> RaftStatus:
    """The raft state from the newest WAL segment (its name and content) and the names of
    the snapshots: a snapshot's index is a floor for the log."""
    named = _SEGMENT.fullmatch(segment)
    status = parse_wal(data, int(named.group(2), 16) if named else 0)
    for name in snapshots:
        found = _SEGMENT.fullmatch(name)
        if found and found.group(3) == "snap":
            index = int(found.group(2), 16)
            if index > status.last_index:
                status = RaftStatus(
                    max(status.commit, index), index, max(status.term, int(found.group(1), 16))
                )
    return status
