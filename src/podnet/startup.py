"""Process-wide settings that podnet's own entry points make, explicitly and before the
first model is built (the CLI, the daemon, the DNS server, the flow collector), so that
importing a podnet module changes nothing in the importing process.

pydantic looks for plugins at the first model build: the entry points of every installed
distribution (importlib.metadata, email parsing of each METADATA), 10-25 ms of every
command's start-up (issue 8). podnet uses none. The setting travels to podnet's children
through the environment; a user's command run in a pod (`podnet exec`) gets it removed
again, unless the user had set it."""

from __future__ import annotations

import os

_PLUGINS = "PYDANTIC_DISABLE_PLUGINS"
_OURS = "PODNET_SET_PYDANTIC_DISABLE_PLUGINS"  # marks the setting as podnet's, not the user's


def lean_pydantic() -> None:
    """Turn pydantic's plugin discovery off for this process and podnet's children (a
    user's explicit setting is kept)."""
    if _PLUGINS not in os.environ:
        os.environ[_PLUGINS] = "__all__"
        os.environ[_OURS] = "1"


def user_environment() -> None:
    """Undo lean_pydantic before a user's command replaces this process."""
    if os.environ.pop(_OURS, None) is not None:
        os.environ.pop(_PLUGINS, None)
