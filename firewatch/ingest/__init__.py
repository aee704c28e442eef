"""Ingest: input records (JSONL lines, FIRMS CSV rows, Kafka message values) to validated
detections, every bad record rejected with a reason (see firewatch.model.RejectReason)."""

from firewatch.ingest.files import Batch, read_batches, split_lines
from firewatch.ingest.firms import is_firms_header, read_firms
from firewatch.ingest.validate import (
    describe_reject,
    detection_id,
    iter_lines,
    validate_lines,
    validate_objects,
)

__all__ = [
    "Batch",
    "describe_reject",
    "detection_id",
    "is_firms_header",
    "iter_lines",
    "read_batches",
    "read_firms",
    "split_lines",
    "validate_lines",
    "validate_objects",
]
