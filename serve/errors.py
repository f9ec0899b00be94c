"""The errors of a served env's client (no third-party import, so the CLI can catch them without the extra)."""

from __future__ import annotations


class EnvServerError(RuntimeError):
    """The env server refused a request or the session was lost; the message says which, and what to do."""


class SessionClosedError(ConnectionError):
    """The session's connection closed (the server stopped, or closed an idle session); it cannot continue."""
