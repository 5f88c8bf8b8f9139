"""Stream side of drainer: naming, group reads, partition workers, dead letters, producer."""

from drainer.consumers.dead_letter import DeadLetter, DeadLetterStream, NewDeadLetter
from drainer.consumers.entry import Envelope, decode_entry
from drainer.consumers.group import ReadMode, ReadResult, RedisClient, StreamGroup, parse_entry_id
from drainer.consumers.health import TenantHealth
from drainer.consumers.limiter import PartitionLimiter
from drainer.consumers.options import ConsumerOptions
from drainer.consumers.partition import PartitionWorker, Pipeline
from drainer.consumers.producer import Appended, Producer, delete_op, insert_op, update_op
from drainer.consumers.streams import StreamLayout, partition_of
from drainer.consumers.supervisor import Supervisor

__all__ = [
    "Appended",
    "ConsumerOptions",
    "DeadLetter",
    "DeadLetterStream",
    "Envelope",
    "NewDeadLetter",
    "PartitionLimiter",
    "PartitionWorker",
    "Pipeline",
    "Producer",
    "ReadMode",
    "ReadResult",
    "RedisClient",
    "StreamGroup",
    "StreamLayout",
    "Supervisor",
    "TenantHealth",
    "decode_entry",
    "delete_op",
    "insert_op",
    "parse_entry_id",
    "partition_of",
    "update_op",
]
