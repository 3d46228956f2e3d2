"""Config objects as inputs (dataclasses, NamedTuples, attrs, pydantic, user classes, ``self``),
``register_fingerprint``, and refusals that say what to do first."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import subprocess
import sys
import textwrap
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import attrs
import numpy as np
import polars as pl
import pydantic
import pytest

import featurecache
from featurecache.errors import ConfigError, UnsupportedInputError
from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.inputs import fingerprint_input
from featurecache.fingerprint.registry import register_fingerprint
from featurecache.fingerprint.types import InputFingerprint
from featurecache.ops.key_diff_wording import input_change
from tests.e2e import SESSION
from tests.team_support import BACKENDS, TeamBackend, team_backend


@pytest.fixture
def files(tmp_path: Path) -> Iterator[FileFingerprinter]:
    fingerprinter = FileFingerprinter(tmp_path / "state", project_root=tmp_path)
    yield fingerprinter
    fingerprinter.close()


def fp(value: object, files: FileFingerprinter, argument: str = "cfg") -> InputFingerprint:
    return fingerprint_input(argument, value, files=files)


# ------------------------------------------------------------------------- config classes


@dataclasses.dataclass(frozen=True)
class Frozen:
    lr: float = 0.1
    depth: int = 3
    note: str = dataclasses.field(default="", compare=False)


@dataclasses.dataclass
class Mutable:
    lr: float = 0.1
    depth: int = 3


@dataclasses.dataclass(frozen=True)
class Twin:  # Frozen's fields under another name
    lr: float = 0.1
    depth: int = 3
    note: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Slotted:
    lr: float = 0.1
    late: int = dataclasses.field(init=False)


class Window(NamedTuple):
    size: int
    step: int = 1


class OtherWindow(NamedTuple):
    size: int
    step: int = 1


@attrs.define
class AttrsCfg:
    lr: float = 0.1
    depth: int = 3


@attrs.frozen
class AttrsFrozen:
    lr: float = 0.1


class Settings(pydantic.BaseModel):
    lr: float = 0.1
    depth: int = 3
    url: pydantic.HttpUrl = pydantic.HttpUrl("https://example.com/data")


class Loose(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    lr: float = 0.1


DEFAULT_WINDOW = Window(5)


@dataclasses.dataclass(frozen=True)
class Holder:
    frame: Any
    path: Path
    inner: Frozen = Frozen()
    window: Window = DEFAULT_WINDOW


@pytest.mark.parametrize(
    ("make", "change"),
    [
        (lambda: Frozen(), lambda: Frozen(depth=4)),
        (lambda: Mutable(), lambda: Mutable(lr=0.2)),
        (lambda: Window(5), lambda: Window(5, 2)),
        (lambda: AttrsCfg(), lambda: AttrsCfg(depth=4)),
        (lambda: AttrsFrozen(), lambda: AttrsFrozen(lr=0.3)),
        (lambda: Settings(), lambda: Settings(url=pydantic.HttpUrl("https://example.com/other"))),
        (lambda: Loose(**{"extra_knob": 1}), lambda: Loose(**{"extra_knob": 2})),
    ],
)
def test_config_objects_count_by_their_field_values(
    make: Any, change: Any, files: FileFingerprinter
) -> None:
    first, again, changed = fp(make(), files), fp(make(), files), fp(change(), files)
    assert first.kind == "object"
    assert first.fingerprint == again.fingerprint
    assert first.fingerprint != changed.fingerprint


def test_the_class_is_part_of_the_fingerprint(files: FileFingerprinter) -> None:
    assert fp(Frozen(), files).fingerprint != fp(Twin(), files).fingerprint
    assert fp(Window(5), files).fingerprint != fp(OtherWindow(5), files).fingerprint
    # A NamedTuple is not the plain tuple of its values (before, it was).
    assert fp(Window(5), files).fingerprint != fp((5, 1), files).fingerprint
    value = fp(Frozen(), files).value
    assert value == {
        "type": "tests.fingerprint.test_objects.Frozen",
        "fields": {"lr": 0.1, "depth": 3, "note": ""},
    }


def test_a_named_tuple_inside_a_container_counts_as_a_config(files: FileFingerprinter) -> None:
    # Inside a list, tuple or dict too, a NamedTuple is its class and fields, not a plain tuple
    # (before, only a NamedTuple passed directly was): two classes with equal values differ.
    for wrap in (lambda w: [w], lambda w: (1, w), lambda w: {"window": [w]}):
        mine, other = fp(wrap(Window(5)), files), fp(wrap(OtherWindow(5)), files)
        assert mine.fingerprint != other.fingerprint
        assert mine.fingerprint != fp(wrap((5, 1)), files).fingerprint
        assert mine.fingerprint == fp(wrap(Window(5)), files).fingerprint
        assert mine.fingerprint != fp(wrap(Window(5, 2)), files).fingerprint
    # A container of plain values keeps its value fingerprint.
    assert fp([(5, 1)], files).kind == "value"


def test_fields_excluded_from_equality_still_count(files: FileFingerprinter) -> None:
    # compare=False only says the field is not part of ==; it may still change a result.
    assert Frozen(note="a") == Frozen(note="b")
    assert fp(Frozen(note="a"), files).fingerprint != fp(Frozen(note="b"), files).fingerprint


def test_unset_fields_are_recorded_not_refused(files: FileFingerprinter) -> None:
    result = fp(Slotted(), files)
    assert result.value["fields"] == {"lr": 0.1, "late": "<unset>"}


def test_frames_paths_and_configs_inside_a_config_count_by_content(
    files: FileFingerprinter, tmp_path: Path
) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a\n1\n")
    frame = pl.DataFrame({"a": [1, 2]})
    before = fp(Holder(frame, data), files)
    assert before.fingerprint == fp(Holder(frame.clone(), data), files).fingerprint
    assert (
        before.fingerprint
        != fp(Holder(frame.with_columns(pl.col("a") + 1), data), files).fingerprint
    )
    assert before.fingerprint != fp(Holder(frame, data, inner=Frozen(lr=0.5)), files).fingerprint
    assert before.fingerprint != fp(Holder(frame, data, window=Window(6)), files).fingerprint
    data.write_text("a\n2\n")  # same size, new content
    os.utime(data, ns=(1, 1))  # an old mtime: the stat cache must still see the change
    assert before.fingerprint != fp(Holder(frame, data), files).fingerprint
    shown = before.value["fields"]
    assert shown["frame"].startswith("polars DataFrame") and shown["inner"]["fields"]["lr"] == 0.1


def test_configs_inside_containers_count_by_their_fields(files: FileFingerprinter) -> None:
    both = fp([Frozen(), {"w": Mutable()}], files)
    assert both.fingerprint != fp([Frozen(), {"w": Mutable(lr=9.0)}], files).fingerprint
    assert both.fingerprint == fp([Frozen(), {"w": Mutable()}], files).fingerprint


class Extended(Mutable):  # not decorated itself: its own attribute must count too
    def __init__(self, lr: float, extra: int) -> None:
        super().__init__(lr)
        self.extra = extra


def test_an_undecorated_subclass_of_a_dataclass_counts_all_its_attributes(
    files: FileFingerprinter,
) -> None:
    assert fp(Extended(0.1, 1), files).fingerprint != fp(Extended(0.1, 2), files).fingerprint
    assert fp(Extended(0.1, 1), files).value["fields"] == {"depth": 3, "extra": 1, "lr": 0.1}


def test_why_names_the_fields_that_changed(files: FileFingerprinter, tmp_path: Path) -> None:
    def change(a: object, b: object) -> list[str]:
        return input_change(fp(a, files).to_json(), fp(b, files).to_json())[1:]

    assert change(Frozen(), Frozen(depth=4)) == ["field `depth`: 3 → 4"]
    data = tmp_path / "d.csv"
    data.write_text("x")
    frame = pl.DataFrame({"a": [1]})
    nested = change(Holder(frame, data), Holder(frame, data, inner=Frozen(lr=0.5)))
    assert nested == ["field `inner.lr`: 0.1 → 0.5"]
    assert change(Frozen(), Twin()) == [
        "type tests.fingerprint.test_objects.Frozen → tests.fingerprint.test_objects.Twin"
    ]


# ------------------------------------------------------------------- plain user instances


class Plain:
    def __init__(self, a: int, b: str, *, order: str = "ab") -> None:
        if order == "ab":
            self.a, self.b = a, b
        else:
            self.b, self.a = b, a

    @functools.cached_property
    def derived(self) -> int:
        return self.a * 2


class WithSlots:
    __slots__ = ("__hidden", "x")

    def __init__(self, x: int, hidden: int | None = None) -> None:
        self.x = x
        if hidden is not None:
            self.__hidden = hidden


class Failure(Exception):
    pass


class HoldsALock:
    def __init__(self) -> None:
        self.lock = threading.Lock()


class Pipeline:
    window = 30  # a class attribute: code, not data

    def __init__(self, scale: int) -> None:
        self.scale = scale


class Empty:
    pass


def test_user_class_instances_count_by_their_attributes(files: FileFingerprinter) -> None:
    base = fp(Plain(1, "x"), files)
    assert base.kind == "object"
    assert base.fingerprint == fp(Plain(1, "x", order="ba"), files).fingerprint  # sorted
    assert base.fingerprint != fp(Plain(2, "x"), files).fingerprint
    computed = Plain(1, "x")
    assert computed.derived == 2  # a cached_property stored in __dict__ does not count
    assert fp(computed, files).fingerprint == base.fingerprint
    assert fp(WithSlots(1), files).fingerprint != fp(WithSlots(1, hidden=2), files).fingerprint
    assert fp(WithSlots(1, 2), files).value["fields"] == {"_WithSlots__hidden": 2, "x": 1}
    assert fp(Empty(), files).fingerprint == fp(Empty(), files).fingerprint


def test_self_of_a_method_is_fingerprinted_like_any_argument(files: FileFingerprinter) -> None:
    one, same, other = Pipeline(2), Pipeline(2), Pipeline(3)
    assert fp(one, files, "self").fingerprint == fp(same, files, "self").fingerprint
    assert fp(one, files, "self").fingerprint != fp(other, files, "self").fingerprint


def test_namespaces_count_by_their_attributes(files: FileFingerprinter) -> None:
    args = argparse.Namespace(lr=0.1, epochs=3)
    assert (
        fp(args, files).fingerprint != fp(argparse.Namespace(lr=0.1, epochs=4), files).fingerprint
    )
    ns = types.SimpleNamespace(lr=0.1)
    assert fp(ns, files).value["fields"] == {"lr": 0.1}


# --------------------------------------------------------------------------- refusals


def _refusal(value: object, files: FileFingerprinter) -> UnsupportedInputError:
    with pytest.raises(UnsupportedInputError) as caught:
        fp(value, files)
    return caught.value


def test_refusals_say_what_to_do_first_and_list_the_types_last(files: FileFingerprinter) -> None:
    message = str(_refusal(HoldsALock(), files))
    assert message.startswith("argument 'cfg': ")
    first_sentence = message.split(". ")[0]
    assert "register_fingerprint" in first_sentence or "Pass plain values" in first_sentence
    assert "register_fingerprint(HoldsALock, fn)" in message
    assert "cfg.lock" in message and "HoldsALock" in message
    assert message.index("register_fingerprint") < message.index("Supported:")
    assert message.index("Supported:") > len(message) // 3  # the long list comes last


def test_a_user_class_on_a_c_base_is_refused_with_what_to_do(files: FileFingerprinter) -> None:
    error = _refusal(Failure("boom"), files)  # its args live in the C struct, not __dict__
    assert str(error).startswith("argument 'cfg': Make Failure a dataclass")
    assert "builtins.Exception" in str(error)


def test_library_objects_are_refused_with_register_fingerprint(files: FileFingerprinter) -> None:
    error = _refusal(threading.Event(), files)  # stdlib, pure Python: not a user class
    assert "register_fingerprint(Event, fn)" in str(error)


def test_cycles_are_refused_not_recursed_forever(files: FileFingerprinter) -> None:
    node = Plain(1, "x")
    node.b = node  # type: ignore[assignment]
    assert "Break the cycle at cfg.b" in str(_refusal(node, files))


# ------------------------------------------------------------------- register_fingerprint


class Model:
    """A fitted model: its learned weights are what counts, not its cache."""

    def __init__(self, weights: list[float]) -> None:
        self.weights = np.asarray(weights)
        self.cache: dict[str, object] = {"loaded_at": object()}


class BigModel(Model):
    pass


class Ident:
    def __init__(self, text: str) -> None:
        self.text = text


register_fingerprint(Model, lambda m: m.weights)


@register_fingerprint(Ident)
def _ident_fingerprint(ident: Ident) -> str:
    return ident.text


def test_registered_types_count_by_what_the_function_returns(files: FileFingerprinter) -> None:
    assert fp(Model([1.0]), files).fingerprint == fp(Model([1.0]), files).fingerprint
    assert fp(Model([1.0]), files).fingerprint != fp(Model([2.0]), files).fingerprint
    # Subclasses match through the MRO; the class's own name is part of the fingerprint.
    assert fp(BigModel([1.0]), files).fingerprint != fp(Model([1.0]), files).fingerprint
    assert fp(Ident("a"), files).value == {
        "type": "tests.fingerprint.test_objects.Ident",
        "registered": "a",
    }
    assert featurecache.register_fingerprint is register_fingerprint
    assert "register_fingerprint" in featurecache.__all__


@dataclasses.dataclass(frozen=True)
class Keyed:
    key: str
    volatile: float = 0.0


def test_a_registration_wins_over_the_built_in_rules(files: FileFingerprinter) -> None:
    before = fp(Keyed("a", 1.0), files).fingerprint
    assert before != fp(Keyed("a", 2.0), files).fingerprint
    register_fingerprint(Keyed, lambda k: k.key)
    assert fp(Keyed("a", 1.0), files).fingerprint == fp(Keyed("a", 2.0), files).fingerprint


class SubPath(type(Path())):  # type: ignore[misc]
    pass


def test_a_registered_path_subclass_wins_over_the_path_rule(
    files: FileFingerprinter, tmp_path: Path
) -> None:
    register_fingerprint(SubPath, lambda p: p.name)
    assert fp(SubPath(tmp_path / "missing.csv"), files).value["registered"] == "missing.csv"


def test_bad_registrations_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="fixed fingerprint"):
        register_fingerprint(int, str)
    with pytest.raises(ConfigError, match="expected a class"):
        register_fingerprint("Model", str)  # type: ignore[call-overload]
    with pytest.raises(ConfigError, match="function"):
        register_fingerprint(Empty, 3)  # type: ignore[call-overload]


class Broken:
    pass


class ReturnsItself:
    pass


register_fingerprint(Broken, lambda b: threading.Lock())
register_fingerprint(ReturnsItself, lambda r: r)


def test_a_registered_function_must_return_plain_values(files: FileFingerprinter) -> None:
    message = str(_refusal(Broken(), files))
    assert message.startswith("argument 'cfg': Make the function registered for Broken")
    message = str(_refusal(ReturnsItself(), files))
    assert message.startswith("argument 'cfg': Make the function registered for ReturnsItself")
    assert "Break the cycle" in message


class Raises:
    pass


register_fingerprint(Raises, lambda r: 1 / 0)


def test_an_exception_in_a_registered_function_names_it(files: FileFingerprinter) -> None:
    with pytest.raises(ZeroDivisionError) as caught:
        fp(Raises(), files)
    assert "register_fingerprint for Raises" in " ".join(caught.value.__notes__)


# ------------------------------------------------------------- stability across processes

_CONFIG_MODULE = """
import dataclasses, pydantic
from typing import NamedTuple

@dataclasses.dataclass(frozen=True)
class Cfg:
    tags: frozenset = frozenset({"a", "b", "c", "d"})
    table: dict = dataclasses.field(default_factory=lambda: {"x": 1, "y": {"z", "w"}})

class Win(NamedTuple):
    size: int = 3

class Model(pydantic.BaseModel):
    names: set[str] = {"p", "q", "r"}

class Plain:
    def __init__(self):
        self.b, self.a = {"k", "l"}, 1
"""

_PRINT_FINGERPRINTS = """
import json, pathlib, sys
from featurecache.fingerprint.files import FileFingerprinter
from featurecache.fingerprint.inputs import fingerprint_input
import stableconf as m
files = FileFingerprinter(pathlib.Path(sys.argv[1]), project_root=pathlib.Path(sys.argv[1]))
values = [m.Cfg(), m.Win(), m.Model(), m.Plain()]
print(json.dumps([fingerprint_input("cfg", v, files=files).fingerprint for v in values]))
"""


@pytest.mark.slow  # fresh processes under several hash seeds
def test_object_fingerprints_are_stable_across_processes_and_hash_seeds(tmp_path: Path) -> None:
    (tmp_path / "stableconf.py").write_text(textwrap.dedent(_CONFIG_MODULE))
    outputs = set()
    for seed in ("0", "1", "4242"):
        env = {
            **os.environ,
            "PYTHONHASHSEED": seed,
            "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).parents[2])]),
        }
        result = subprocess.run(
            [sys.executable, "-c", _PRINT_FINGERPRINTS, str(tmp_path / f"state{seed}")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
        )
        outputs.add(result.stdout.strip().splitlines()[-1])
    assert len(outputs) == 1
    assert len(set(json.loads(outputs.pop()))) == 4


# ----------------------------------------------------------------- fresh-process features

CONF = """
import dataclasses
from typing import NamedTuple

import pydantic


@dataclasses.dataclass(frozen=True)
class Cfg:
    scale: int = 2
    name: str = "a"


class Win(NamedTuple):
    size: int = 3

    def rows(self):
        return self.size * ROWS_FACTOR


ROWS_FACTOR = 1


class Settings(pydantic.BaseModel):
    offset: int = 10
"""

FEATURES = """
import polars as pl

from featurecache import cached_feature
from pipeline.conf import Cfg, Settings, Win


@cached_feature
def scaled(cfg: Cfg) -> pl.DataFrame:
    return pl.DataFrame({"v": [1, 2]}).with_columns(pl.col("v") * cfg.scale)


@cached_feature
def windowed(win) -> pl.DataFrame:
    return pl.DataFrame({"v": list(range(win.rows()))})


@cached_feature
def offset(settings: Settings) -> pl.DataFrame:
    return pl.DataFrame({"v": [settings.offset]})


class Pipe:
    def __init__(self, k):
        self.k = k

    @cached_feature
    def total(self) -> pl.DataFrame:
        return pl.DataFrame({"v": [self.k * 100]})
"""

RUN = (
    SESSION
    + """
import sys
from pipeline.conf import Cfg, Settings, Win
from pipeline.features import Pipe, offset, scaled, windowed
scale, size, off, k = (int(x) for x in sys.argv[1:5])
out = {
    "scaled": scaled(Cfg(scale=scale)).get_column("v").to_list(),
    "windowed": windowed(Win(size=size)).height,
    "offset": offset(Settings(offset=off)).item(),
    "total": Pipe(k).total().item(),
}
print(json.dumps({**out, **_session()}))
"""
)


def _run(team: TeamBackend, *args: int) -> dict[str, Any]:
    script = RUN.replace("sys.argv[1:5]", repr([str(a) for a in args]))
    result: dict[str, Any] = team.run_json(script)
    return result


@pytest.fixture(params=BACKENDS)
def team(request: pytest.FixtureRequest, tmp_path: Path) -> TeamBackend:
    return team_backend(request, tmp_path)


@pytest.mark.slow  # four fresh processes
def test_config_objects_and_self_hit_and_miss_across_processes(team: TeamBackend) -> None:
    project = team.project
    project.write("pipeline/__init__.py", "")
    project.write("pipeline/conf.py", CONF)
    project.write("pipeline/features.py", FEATURES)

    first = _run(team, 2, 3, 10, 1)
    assert (first["misses"], first["hits"]) == (4, 0)
    assert first["scaled"] == [2, 4] and first["windowed"] == 3 and first["total"] == 100

    same = _run(team, 2, 3, 10, 1)  # a new process, equal field values: every call hits
    assert (same["misses"], same["hits"]) == (0, 4)

    changed = _run(team, 3, 4, 11, 2)  # one field of each object changed: every call misses
    assert (changed["misses"], changed["hits"]) == (4, 0)
    assert changed["scaled"] == [3, 6] and changed["windowed"] == 4
    assert changed["offset"] == 11 and changed["total"] == 200

    # A method of the NamedTuple is code the feature runs: editing it (here, the constant it
    # reads) must recompute, although the feature's own code and the field values are equal.
    project.write("pipeline/conf.py", CONF.replace("ROWS_FACTOR = 1", "ROWS_FACTOR = 2"))
    edited = _run(team, 3, 4, 11, 2)
    assert edited["windowed"] == 8
    assert (edited["misses"], edited["hits"]) == (1, 3)  # only the feature using the method
