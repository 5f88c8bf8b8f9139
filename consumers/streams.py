"""Stream naming: partition keys to shard numbers to Redis keys (Hyperswitch's layout)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

DEFAULT_STREAM_NAME = "DRAINER_STREAM"
DEFAULT_NUM_PARTITIONS = 64
DEAD_LETTER_KEY = "drainer:dead_letter"


def partition_of(partition_key: str, num_partitions: int) -> int:
    """The shard number of a partition key: IEEE CRC-32 of its UTF-8 bytes, modulo."""
    return zlib.crc32(partition_key.encode()) % num_partitions


def prefixed(prefix: str, key: str) -> str:
    """A key under a tenant's Redis key prefix (``prefix:key``; no prefix, no colon)."""
    return f"{prefix}:{key}" if prefix else key


@dataclass(frozen=True, slots=True)
class StreamLayout:
    """Where one tenant's partition streams and dead letters live."""

    stream_name: str = DEFAULT_STREAM_NAME
    num_partitions: int = DEFAULT_NUM_PARTITIONS
    prefix: str = ""

    def stream_key(self, partition: int) -> str:
        """The Redis key of partition ``partition``: ``<prefix>{shard_N}_<stream_name>``."""
        if not 0 <= partition < self.num_partitions:
            raise ValueError(f"partition {partition} is outside 0..{self.num_partitions - 1}")
        return prefixed(self.prefix, f"{{shard_{partition}}}_{self.stream_name}")

    def stream_for(self, partition_key: str) -> str:
        """The stream a partition key's operations go to."""
        return self.stream_key(partition_of(partition_key, self.num_partitions))

    def all_streams(self) -> list[str]:
        """Every partition stream of this tenant, in partition order."""
        return [self.stream_key(n) for n in range(self.num_partitions)]

    def partition_of_stream(self, stream: str) -> int | None:
        """The partition number of one of this tenant's stream keys, else None.

        Only the exact key :meth:`stream_key` writes counts: ASCII digits without
        leading zeros. ``str.isdigit`` and ``int`` also take other scripts' digits
        (``{shard_٣}`` would be read as 3, ``{shard_²}`` fails in ``int``), and
        ``{shard_03}`` is another Redis key than partition 3's.
        """
        head = prefixed(self.prefix, "{shard_")
        tail = f"}}_{self.stream_name}"
        if not (stream.startswith(head) and stream.endswith(tail)):
            return None
        number = stream[len(head) : len(stream) - len(tail)]
        if not (number.isascii() and number.isdigit()):
            return None
        partition = int(number)
        if partition >= self.num_partitions or str(partition) != number:
            return None
        return partition

    @property
    def dead_letter_key(self) -> str:
        """This tenant's dead-letter stream."""
        return prefixed(self.prefix, DEAD_LETTER_KEY)
