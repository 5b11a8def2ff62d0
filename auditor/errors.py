"""Errors the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations

import re
from collections.abc import Callable

_MENTION = re.compile(r"`([a-z][a-z0-9_]*)`")  # another setting named in a message: `base_responses`


class AuditError(Exception):
    """A usage or input problem the user can fix.

    `setting`: the settings field the problem is about (e.g. "engine"), and `value` what it was given; the message
    follows them. Other settings named in the message are written in backticks (`base_responses`). Python
    callers read `engine='ray': Ray is not installed`; the command line words it `--engine ray: ...`
    (`worded`)."""

    def __init__(self, message: str, setting: str | None = None, value: object = None):
        super().__init__(message)
        self.message, self.setting, self.value = message, setting, value

    def worded(self, name: Callable[[str], str] = str, show: Callable[[object], str] = repr,
               joiner: str = "=") -> str:
        """The message with the setting in front (`name(setting)` joined to `show(value)` by `joiner`, then a colon;
        without a value, the message goes on from the setting's name), and each backticked setting in the message
        as `name(it)` (where `name` returns something other than it)."""
        text = _MENTION.sub(lambda m: name(m[1]) if name(m[1]) != m[1] else m[0], self.message)
        if self.setting is None:
            return text
        if self.value is None:
            return f"{name(self.setting)} {text}"
        return f"{name(self.setting)}{joiner}{show(self.value)}: {text}"

    def __str__(self) -> str:
        return self.worded()
