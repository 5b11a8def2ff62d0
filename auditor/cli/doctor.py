"""`dataset-audit doctor`: what this installation would run on, in one screen."""

from __future__ import annotations

import os
import platform
import re
import sys
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path

import click

from ..cache import cache_dir
from ..errors import AuditError
from ..model.embedded import INSTALL_HINT, converted_path, default_gguf_path, has_converted_copy
from ..version import __version__
from .common import CONTEXT, EXIT_FAILED, EXIT_OK

SHOWN = ("torch", "transformers", "datasets", "pyarrow")  # dependencies listed one by one; the others when missing
OPTIONAL = ("ray", "vllm")  # the extras' engines, listed when installed
NOT_INSTALLED = "not installed"


def installed(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def dependencies() -> list[str]:
    """dataset-audit's required packages, from its installed metadata (none known when it is not installed)."""
    try:
        wanted = requires("dataset-audit") or []
    except PackageNotFoundError:
        return []
    return [name[0] for req in wanted if "extra ==" not in req and (name := re.match(r"[A-Za-z0-9._-]+", req))]


def torch_facts() -> tuple[bool, str, str, str]:
    """(whether torch imports, its build or why not, the device `--device auto` picks, torch's CPU threads)."""
    try:
        import torch

        from ..model.loading import pick_device

        device = pick_device("auto")
        threads = str(torch.get_num_threads())
    except Exception as exc:  # a missing or broken torch is what doctor is for: say so, never a traceback
        why = f"does not import: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
        return False, why, "unknown (torch does not import)", "unknown"
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU build, no CUDA"
    name = f" ({torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} visible)" if device.type == "cuda" else ""
    return True, build, f"{device.type}{name}; --device auto picks cuda, then mps, then cpu", threads


def folder_size(path: Path) -> tuple[int, int]:
    """(bytes, files) under `path`, unreadable entries left out."""
    total = count = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
                count += 1
            except OSError:
                pass
    return total, count


def human(size: int) -> str:
    """A byte count in B, kB, MB or GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size} B"


def facts() -> tuple[list[tuple[str, str]], bool]:
    """The rows doctor prints, and whether a required package is missing or torch does not import."""
    imports, build, device, threads = torch_facts()
    versions = {name: installed(name) for name in {*SHOWN, *dependencies()}}
    missing = sorted(name for name, found in versions.items() if found is None)
    rows = [("dataset-audit", __version__), ("python", f"{platform.python_version()} ({sys.executable})")]
    for name in SHOWN:
        extra = f" ({build})" if name == "torch" else ""
        rows.append((name, f"{versions[name] or NOT_INSTALLED}{extra}"))
    others = [name for name in missing if name not in SHOWN]
    rows.append(("other packages", f"{NOT_INSTALLED}: {', '.join(others)} (pip install -e .)" if others
                 else "all installed"))
    optional = [f"{name} {installed(name)}" for name in OPTIONAL if installed(name)]
    rows += [("optional", ", ".join(optional) or f"none of {', '.join(OPTIONAL)}"), ("device", device),
             ("torch threads", threads)]
    cache = cache_dir()
    where = "$DATASET_AUDIT_CACHE" if os.environ.get("DATASET_AUDIT_CACHE") else "default; DATASET_AUDIT_CACHE moves it"
    size, files = folder_size(cache)
    rows.append(("cache", f"{cache} ({where}): " + (f"{human(size)} in {files:,} files" if cache.is_dir()
                                                      else "not created yet")))
    try:
        rows.append(("embedded model", f"installed: {default_gguf_path()}"))
    except AuditError:
        rows.append(("embedded model", f"{NOT_INSTALLED}: run `{INSTALL_HINT}` (or scan with --model)"))
    rows.append(("converted copy", f"cached: {converted_path()}" if has_converted_copy()
                 else "not yet: the first scan with the embedded model converts it (about 20 s)"))
    return rows, bool(missing) or not imports


@click.command(context_settings=CONTEXT)
def doctor() -> None:
    """Show what this installation runs on: the versions of Python, dataset-audit and its main
    packages (and of the optional ones installed), the device a scan picks with --device auto,
    torch's CPU threads, the cache folder and its size, and whether the embedded model is
    installed and already converted into the cache.

    Exit codes: 0 ready, 1 a required package is missing or torch does not import.

    \b
    Examples:
      dataset-audit doctor
    """
    rows, broken = facts()
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")
    sys.exit(EXIT_FAILED if broken else EXIT_OK)
