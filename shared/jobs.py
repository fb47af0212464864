"""Which modules define queued-job handlers: the local worker and the Lambda both import these."""

from __future__ import annotations

import importlib

# Importing a module registers its @register(kind) handlers; add a domain's jobs module here.
HANDLER_MODULES: tuple[str, ...] = ("shared.mail.jobs", "shared.events.jobs", "shared.transcoding.jobs")


def load_handlers() -> None:
    """Import every handler module so the worker knows every job kind."""
    for module in HANDLER_MODULES:
        importlib.import_module(module)
