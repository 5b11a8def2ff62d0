"""The tool's version (written into manifests, reports and training records)."""

__version__ = "0.1.0"
