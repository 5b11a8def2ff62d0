"""Text as it is shown: excerpts of untrusted sample text, and source paths, for tables, reports and CI messages."""

from __future__ import annotations


def excerpt(text: object, width: int, flatten: bool = True) -> str:
    """`text` cut to `width` characters with an ellipsis; `flatten` joins its lines and runs of spaces first."""
    text = "" if text is None else str(text)
    if flatten:
        text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def short_paths(paths: list[str]) -> list[str]:
    """The paths without the folders they all share (one path: its file name), e.g. for a table of sources."""
    parts = [path.split("/") for path in paths]
    shared = 0
    while all(len(p) > shared + 1 for p in parts) and len({p[shared] for p in parts}) == 1:
        shared += 1
    return ["/".join(p[shared:]) for p in parts]
