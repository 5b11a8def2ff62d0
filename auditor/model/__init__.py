"""The model runtime: loading, chat templating, activation capture, generation, vLLM and chat endpoints.

It knows nothing of scans, traits or vectors.
"""
