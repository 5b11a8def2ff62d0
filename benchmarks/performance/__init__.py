"""The performance benchmark (run it with `python -m benchmarks.performance`; see __main__.py)."""
