"""Placeholder: commands of the live cluster are registered here (issue 3)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    del sub  # filled in by the live-cluster work


__all__ = ["argparse", "register"]
