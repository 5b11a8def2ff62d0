"""The scan engines: `local` (this process) and `ray` (a Ray Data pipeline), each ending in one ScanResult."""
