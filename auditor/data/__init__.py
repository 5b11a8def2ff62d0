"""Reading chat datasets: files, record formats, and the quarantine of bad records."""

from .files import DATA_SUFFIXES, expand_inputs, is_uri, open_binary, parse_line, read_input, read_records
from .formats import conversation, to_messages
from .records import (
           CHOSEN,
           REJECTED,
           TOOL_RESPONSE,
           BadRecord,
           Messages,
           Quarantined,
           Record,
           content_text,
           trained_text,
)

__all__ = ["CHOSEN", "DATA_SUFFIXES", "REJECTED", "TOOL_RESPONSE", "BadRecord", "Messages", "Quarantined", "Record",
           "content_text", "conversation", "expand_inputs", "is_uri", "open_binary", "parse_line", "read_input",
           "read_records", "to_messages", "trained_text"]
