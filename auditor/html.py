"""The Jinja environment of the HTML reports (scans and extractions).

The templates live in the repository's `reports/templates/`, which installs as the package
`auditor.templates`, so a plain `pip install .` carries them and every report renders offline.
"""

from __future__ import annotations

import base64
import hashlib
from importlib.resources import files

from jinja2 import Environment, FileSystemBytecodeCache, FileSystemLoader, StrictUndefined

from .cache import cache_dir


def template_environment() -> Environment:
    """Autoescape on (sample text is untrusted), undefined names are errors; `sha256_base64` for CSP hashes.
    Compiled templates are kept in the cache folder."""
    compiled = cache_dir() / "templates"  # compiling the report template takes longer than rendering it
    compiled.mkdir(parents=True, exist_ok=True)
    env = Environment(
        loader=FileSystemLoader(str(files("auditor.templates"))),
        bytecode_cache=FileSystemBytecodeCache(str(compiled)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["sha256_base64"] = lambda text: base64.b64encode(hashlib.sha256(str(text).encode()).digest()).decode()
    return env
