"""Process-wide settings that podnet's own entry points make, explicitly and before the
first model is built (the CLI, the daemon, the DNS server, the flow collector), so that
importing a podnet module changes nothing in the importing process.

pydantic looks for plugins at the first model build: the entry points of every installed
distribution (importlib.metadata, email parsing of each METADATA), 10-25 ms of every
command's start-up (issue 8). podnet uses none. The setting travels to podnet's children
through the environment; a user's command run in a pod (`podnet exec`) gets it removed
again, unless the user had set it.

With plugins off, pydantic's loader only returns (), but importing it still imports
importlib.metadata (zipfile, email, csv, tempfile, socket: ~15 ms of CPU at the first model
build). podnet's process gets a stand-in of that one function instead (`_PluginsOff`), found
when pydantic imports its loader (`_StandInFinder`), so that nothing of pydantic is loaded
before then."""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
from types import ModuleType

TYPE_CHECKING = False  # `typing` itself is 3-4 ms of `podnet --help`, which needs nothing of it
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

_PLUGINS = "PYDANTIC_DISABLE_PLUGINS"
_OURS = "PODNET_SET_PYDANTIC_DISABLE_PLUGINS"  # marks the setting as podnet's, not the user's
_ALL_OFF = ("__all__", "1", "true")  # the values pydantic's loader reads as "no plugins"
_LOADER = "pydantic.plugin._loader"


def lean_pydantic() -> None:
    """Turn pydantic's plugin discovery off for this process and podnet's children (a
    user's explicit setting is kept), and spare this process the import of its loader."""
    if _PLUGINS not in os.environ:
        os.environ[_PLUGINS] = "__all__"
        os.environ[_OURS] = "1"
    if _StandInFinder not in sys.meta_path:
        sys.meta_path.insert(0, _StandInFinder)


def user_environment() -> None:
    """Undo lean_pydantic before a user's command replaces this process."""
    if os.environ.pop(_OURS, None) is not None:
        os.environ.pop(_PLUGINS, None)


class _StandInFinder:
    """Answers the import of pydantic's plugin loader with `_PluginsOff` while plugins are
    off (an import system finder and loader; every other name goes to the next finder)."""

    @staticmethod
    def find_spec(
        name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != _LOADER or os.environ.get(_PLUGINS) not in _ALL_OFF:
            return None
        return importlib.machinery.ModuleSpec(name, _StandInFinder)  # type: ignore[arg-type]

    @staticmethod
    def create_module(spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return _PluginsOff(spec.name)

    @staticmethod
    def exec_module(module: ModuleType) -> None:
        pass


class _PluginsOff(ModuleType):
    """Stands in for pydantic.plugin._loader while plugins are off: pydantic imports
    `get_plugins` from it when it builds a validator. Should the setting be gone by then,
    the real loader is imported and answers."""

    def get_plugins(self) -> Iterable[Any]:
        if os.environ.get(_PLUGINS) in _ALL_OFF:
            return ()
        if sys.modules.get(_LOADER) is self:
            del sys.modules[_LOADER]
        real: Any = importlib.import_module(_LOADER)
        return real.get_plugins()  # type: ignore[no-any-return]
