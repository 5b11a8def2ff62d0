"""The HTML report templates; installed as the package `auditor.templates` (see auditor/html.py)."""
