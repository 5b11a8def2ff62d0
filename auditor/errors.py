"""Errors the CLI turns into a one-line message and exit code 2."""


class AuditError(Exception):
    """A usage or input problem the user can fix; the message is shown as is."""
