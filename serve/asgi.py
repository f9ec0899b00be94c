"""The ASGI app of ``openenv.yaml`` (``uvicorn fairgym.serve.asgi:app``): ``fairgym serve``'s app, its settings read
from ``FAIRGYM_SERVE_*`` environment variables (``fairgym.serve.app.ENVIRON_SETTINGS``)."""

from __future__ import annotations

from fairgym.serve.app import config_from_environ, create_app

app = create_app(config_from_environ())
