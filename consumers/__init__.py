"""Stream side of drainer: naming, group reads, partition workers, dead letters, producer."""

from consumers.dead_letter import DeadLetter, DeadLetterStream, NewDeadLetter
from consumers.entry import Envelope, decode_entry
from consumers.group import ReadMode, ReadResult, RedisClient, StreamGroup, parse_entry_id
from consumers.health import TenantHealth
from consumers.partition import ConsumerOptions, PartitionWorker, Tenant
from consumers.producer import Appended, Producer, delete_op, insert_op, update_op
from consumers.streams import StreamLayout, partition_of
from consumers.supervisor import Supervisor

__all__ = [
    "Appended",
    "ConsumerOptions",
    "DeadLetter",
    "DeadLetterStream",
    "Envelope",
    "NewDeadLetter",
    "PartitionWorker",
    "Producer",
    "ReadMode",
    "ReadResult",
    "RedisClient",
    "StreamGroup",
    "StreamLayout",
    "Supervisor",
    "Tenant",
    "TenantHealth",
    "decode_entry",
    "delete_op",
    "insert_op",
    "parse_entry_id",
    "partition_of",
    "update_op",
]
