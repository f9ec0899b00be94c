"""Helpers of the serve tests: the library's server process (``fairgym.serve.process``)."""

from __future__ import annotations

from fairgym.serve.process import get_json, server_process

__all__ = ["get_json", "server_process"]
