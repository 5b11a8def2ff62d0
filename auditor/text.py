"""Text as it is shown: excerpts of untrusted sample text for tables, reports and CI messages."""

from __future__ import annotations


def excerpt(text: object, width: int, flatten: bool = True) -> str:
    """`text` cut to `width` characters with an ellipsis; `flatten` joins its lines and runs of spaces first."""
    text = "" if text is None else str(text)
    if flatten:
        text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"
