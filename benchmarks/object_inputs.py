"""What fingerprinting config objects costs (issue 12).

    .venv/bin/python benchmarks/object_inputs.py

Prints, per argument, the median time of ``fingerprint_input`` in microseconds:
* a plain ``int`` and a small dict (every argument pays the new object checks);
* a frozen dataclass, a NamedTuple, a pydantic model and a user-class instance of five plain
  fields each (fields, plus the re-validated code identity of the class);
* a type taught with ``register_fingerprint``;
* the first fingerprint of a new class in the process (its code identity is computed once).

The config classes live in a module written to a temp folder, as user code does.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from timing import per_call_us

from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.inputs import fingerprint_input
from featurecache.fingerprint.registry import register_fingerprint

CONFIGS = """
import dataclasses
from typing import NamedTuple

import pydantic


@dataclasses.dataclass(frozen=True)
class Frozen:
    lr: float = 0.1
    depth: int = 3
    name: str = "gbm"
    seed: int = 42
    tags: tuple = ("a", "b")


class Window(NamedTuple):
    lr: float = 0.1
    depth: int = 3
    name: str = "gbm"
    seed: int = 42
    tags: tuple = ("a", "b")


class Settings(pydantic.BaseModel):
    lr: float = 0.1
    depth: int = 3
    name: str = "gbm"
    seed: int = 42
    tags: tuple = ("a", "b")


class Plain:
    def __init__(self):
        self.lr, self.depth, self.name, self.seed, self.tags = 0.1, 3, "gbm", 42, ("a", "b")

    def scaled(self, x):
        return x * self.lr


class Model:
    def __init__(self):
        self.weights = [0.1, 0.2, 0.3]
"""


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="featurecache-bench-objects-"))
    (folder / "bench_configs.py").write_text(textwrap.dedent(CONFIGS))
    sys.path.insert(0, str(folder))
    configs = importlib.import_module("bench_configs")
    register_fingerprint(configs.Model, lambda m: m.weights)
    files = FileFingerprinter(folder / "state", project_root=folder)

    def fingerprint(value: object) -> Callable[[], object]:
        return lambda: fingerprint_input("arg", value, files=files)

    start = time.perf_counter()
    fingerprint(configs.Frozen())()
    first_ms = (time.perf_counter() - start) * 1e3
    rows = {
        "int": 3,
        "dict of 5 plain values": {"lr": 0.1, "depth": 3, "name": "gbm", "seed": 42, "n": 1},
        "frozen dataclass, 5 fields": configs.Frozen(),
        "NamedTuple, 5 fields": configs.Window(),
        "pydantic model, 5 fields": configs.Settings(),
        "user-class instance, 5 attributes": configs.Plain(),
        "registered type (list of 3 floats)": configs.Model(),
    }
    print(f"{'argument':<40} {'µs per fingerprint':>20}")
    for label, value in rows.items():
        print(f"{label:<40} {per_call_us(fingerprint(value)):>20.1f}")
    print(f"{'first dataclass of a new class (ms)':<40} {first_ms:>20.1f}")
    files.close()


if __name__ == "__main__":
    main()
