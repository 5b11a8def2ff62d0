"""Reading chat datasets: files, record formats, and the quarantine of bad records."""

from .files import DATA_SUFFIXES, expand_inputs, open_binary, parse_line, read_records
from .formats import conversation, to_messages
from .records import BadRecord, Messages, Quarantined, Record

__all__ = ["DATA_SUFFIXES", "BadRecord", "Messages", "Quarantined", "Record", "conversation", "expand_inputs",
           "open_binary", "parse_line", "read_records", "to_messages"]
