"""What the composite codec's leaf encoders share: the refusal they raise (the codec adds where
in the result it happened) and the JSON spelling of text that every catalog backend accepts."""

from __future__ import annotations

import base64
from typing import Any


class RefusedLeaf(Exception):
    """A leaf of a composite result that cannot be stored. ``type_name`` names what it is,
    ``hint`` says what to return instead; ``codec.split`` turns it into an
    ``UnsupportedOutputError`` naming the feature and the leaf's place in the result."""

    def __init__(self, type_name: str, hint: str) -> None:
        self.type_name = type_name
        self.hint = hint
        super().__init__(f"{type_name}: {hint}")


def type_name(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__.split('.')[0]}.{cls.__qualname__}"


def _jsonb_safe(text: str) -> bool:
    # PostgreSQL's JSONB refuses \u0000 and unpaired surrogates: such text is spelled in base64.
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")  # fails exactly on unpaired surrogates
    except UnicodeEncodeError:
        return False
    return True


def text_out(text: str) -> str | dict[str, str]:
    """``text`` as it goes into the structure: itself, or ``{"b64": …}`` when a catalog backend
    would refuse or alter it. Exact either way (``text_in`` inverts it)."""
    if _jsonb_safe(text):
        return text
    raw = text.encode("utf-8", "surrogatepass")
    return {"b64": base64.b64encode(raw).decode("ascii")}


def text_in(node: Any) -> str:
    if isinstance(node, str):
        return node
    return base64.b64decode(node["b64"]).decode("utf-8", "surrogatepass")


def bytes_out(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def bytes_in(node: str) -> bytes:
    return base64.b64decode(node)
