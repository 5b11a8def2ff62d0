"""The Jinja environment of the HTML reports (scans and extractions).

The templates live in the repository's `reports/templates/`, which installs as the package
`auditor.templates`, so a plain `pip install .` carries them and every report renders offline.
"""

from __future__ import annotations

import base64
import hashlib
from importlib.resources import files
from pathlib import Path

from jinja2 import Environment, FileSystemBytecodeCache, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from .cache import cache_dir


def templates_dir() -> Path:
    """The repository's reports/templates beside the `auditor` package (a source checkout, installed or not),
    else the installed package `auditor.templates` (a wheel)."""
    source = Path(__file__).resolve().parent.parent / "reports" / "templates"
    return source if source.is_dir() else Path(str(files("auditor.templates")))


def template_environment() -> Environment:
    """Autoescape on (sample text is untrusted), undefined names are errors; filters `sha256_base64` (CSP hashes),
    `plural` and `breakable`. Compiled templates are kept in the cache folder."""
    compiled = cache_dir() / "templates"  # compiling the report template takes longer than rendering it
    compiled.mkdir(parents=True, exist_ok=True)
    env = Environment(
        loader=FileSystemLoader(str(templates_dir())),
        bytecode_cache=FileSystemBytecodeCache(str(compiled)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["sha256_base64"] = lambda text: base64.b64encode(hashlib.sha256(str(text).encode()).digest()).decode()
    env.filters["plural"] = plural
    env.filters["breakable"] = breakable
    return env


def plural(n: int, word: str) -> str:
    """"1 sample", "2 samples", "1,200 samples"."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def breakable(path: object) -> Markup:
    """A path, escaped, that may wrap after each '/' (and nowhere inside a name)."""
    return Markup("/<wbr>").join(escape(part) for part in str(path).split("/"))
