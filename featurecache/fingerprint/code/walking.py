"""What the helpers of the dependency walk (``classes``, ``imports``) may ask of the walker
(``deps.Walker``): a protocol, so that the walker can call them and they never import it."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any, Protocol

from featurecache.fingerprint.code.guards import Guard
from featurecache.fingerprint.code.normalise import DecoratorFilter
from featurecache.fingerprint.code.refs import Chain


class WalkerApi(Protocol):
    guards: list[Guard]

    def token(self, obj: object) -> str | None: ...

    def finding(self, message: str, fatal: bool) -> None: ...

    def function_record(
        self, func: types.FunctionType, key: str, drop_decorator: DecoratorFilter | None = None
    ) -> dict[str, Any]: ...

    def is_ignored(self, owner: str, chain: Chain) -> bool: ...

    def resolve_chain(self, ns: Mapping[str, Any], chain: Chain, where: str) -> str: ...

    def frozen_view(self) -> WalkerApi: ...
