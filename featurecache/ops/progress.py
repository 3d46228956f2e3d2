"""How long-running maintenance reports progress, without knowing who watches (a rich bar in
the CLI, nothing in tests and libraries)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, description: str, total: int) -> None:
        """A new phase of ``total`` steps begins."""
        ...

    def advance(self, steps: int = 1) -> None: ...


class NoProgress:
    """Reports nothing."""

    def start(self, description: str, total: int) -> None:
        return None

    def advance(self, steps: int = 1) -> None:
        return None
