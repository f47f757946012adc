"""A small microblog (the Flask Mega-Tutorial's, rebuilt on Starlette) behind the gateway.

It has no login code: it believes the gateway's identity headers only with a
valid proof (:mod:`gateway.proof`) and refuses them otherwise.
"""

from __future__ import annotations

from backend_app.app import create_app
from backend_app.settings import AppSettings, ConfigError, load_app_settings

__all__ = ["AppSettings", "ConfigError", "create_app", "load_app_settings"]
