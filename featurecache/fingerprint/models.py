"""Fitted models as feature inputs: scikit-learn estimators (LightGBM's and others'
scikit-learn wrappers included) and LightGBM ``Booster`` objects, fingerprinted by what
determines their predictions, never by pickled bytes.

* a scikit-learn estimator (any instance of ``sklearn.base.BaseEstimator``): its class's
  qualified name, the versions of the libraries its class comes from (a scikit-learn upgrade
  may change what ``predict`` computes from the same fitted state, so it recomputes), its
  class's code when it is a class of your own, and *every* instance attribute: the
  parameters, the public fitted state (``coef_``, ``classes_``) and the private one too
  (``KNeighborsClassifier`` keeps its training data in ``_fit_X``, so fitted attributes ending
  in ``_`` alone would let two models fitted on different data collide). Nested estimators
  (a ``Pipeline``'s steps, a ``ColumnTransformer``'s ``transformers_``, a forest's
  ``estimators_``) count the same way, recursively;
* a LightGBM ``Booster``: ``model_to_string(num_iteration=-1)`` (every tree, the objective,
  the feature names, the training parameters and the pandas categories; deterministic: two
  fits on the same data give the same text, tested across processes) and its
  ``best_iteration``, which ``predict`` uses by default;
* the values inside: numpy arrays by dtype, shape and bytes (structured arrays field by field,
  so padding bytes never count; object arrays item by item), scalars, containers, numpy random
  states, functions (by qualified name, and by code when they are your own), sparse matrices
  by their canonical CSR arrays, and the helper objects of the model's own libraries (a tree's
  Cython ``Tree``, a loss object) by the state their ``__getstate__``/``__reduce__`` gives.

Anything else inside a model (an object of another library or of user code whose state cannot
be read canonically) is refused with an ``UnsupportedInputError`` that says what to do:
``register_fingerprint``, save the model to a file and pass its path, or register it in MLflow
and pass its ``models:/`` URI. Nothing is imported: the types are recognised through
``sys.modules`` (an instance implies its library is loaded).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from featurecache.errors import UnsupportedInputError
from featurecache.fingerprint.code.libraries import distribution_version, distributions_of
from featurecache.fingerprint.objects import class_code_digest, is_user_class, qualified_name
from featurecache.fingerprint.types import InputFingerprint
from featurecache.fingerprint.values import is_numpy, json_value, numpy_digest
from featurecache.frames import is_instance
from featurecache.hashing import HASH_ALGO, canonical_encode, hash_struct

KIND = "model"
MAX_DEPTH = 64
# Libraries whose own helper objects inside a model are read through their pickle state
# (``__getstate__`` / ``__reduce__`` values, hashed canonically, never as pickle bytes).
_MODEL_LIBRARIES = frozenset({"sklearn", "lightgbm", "scipy"})
_PLAIN = (type(None), bool, int, float, complex, str, bytes)
_FUNCTIONS = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    type,
)
# Attributes scikit-learn sets from the machine, not from the data: HistGradientBoosting's
# _BinMapper records the OpenMP thread count it ran with. Two machines (or OMP_NUM_THREADS
# settings) fitting the same model must agree (tested); the thresholds it computed still count.
_RUNTIME_ONLY = frozenset({"n_threads"})
_NUMPY_OBJECTS = frozenset({"RandomState", "Generator"})
WHAT_TO_DO = (
    "Teach featurecache what identifies it with featurecache.register_fingerprint(cls, fn), "
    "or save the model to a file (model.save_model / skops / joblib.dump) and pass its path, "
    "or register it in MLflow and pass its 'models:/name/version' URI. featurecache never "
    "hashes pickled bytes: they are not stable across runs."
)


def is_model(value: object) -> bool:
    """A scikit-learn estimator or a LightGBM Booster (without importing either)."""
    return is_instance(value, "sklearn.base", "BaseEstimator") or is_instance(
        value, "lightgbm.basic", "Booster"
    )


def fingerprint_model(argument: str, where: str, value: object) -> InputFingerprint:
    """The fingerprint of a model object passed as ``argument`` (at ``where`` inside it)."""
    walk = _Walk(argument)
    structure = walk.canon(value, where)
    cls = type(value)
    shown = _shown_model(value)
    libraries = _libraries(cls)
    label = ", ".join(f"{d} {v}" for d, v in sorted(libraries.items()))
    return InputFingerprint(
        argument=argument,
        kind=KIND,
        fingerprint=f"{HASH_ALGO}:{hash_struct(['model', structure])}",
        summary=f"model {cls.__qualname__}" + (f" ({label})" if label else ""),
        value={
            "type": qualified_name(cls),
            "libraries": libraries,
            "params": shown,
            "state": hash_struct(["model-state", structure])[:16],
        },
    )


@dataclass
class _Walk:
    """One traversal of a model: the argument for errors, and the objects on the path (a
    cycle would otherwise recurse until the interpreter gives up)."""

    argument: str
    active: list[int] = field(default_factory=list)

    def canon(self, value: object, where: str) -> object:
        if isinstance(value, _PLAIN):
            return value
        if id(value) in self.active or len(self.active) >= MAX_DEPTH:
            raise self._refuse(value, where, "it contains itself or nests too deep")
        self.active.append(id(value))
        try:
            return self._canon(value, where)
        finally:
            self.active.pop()

    def _canon(self, value: Any, where: str) -> object:
        if _is_callable(value):
            return self._callable(value)
        cls = type(value)
        if cls.__module__.startswith("numpy") and cls.__name__ in _NUMPY_OBJECTS:
            return self._numpy_other(value, where)
        if is_numpy(value):
            return self._numpy(value, where)
        if isinstance(value, list | tuple):
            tag = "list" if isinstance(value, list) else "tuple"
            return [tag, [self.canon(x, f"{where}[{i}]") for i, x in enumerate(value)]]
        if isinstance(value, Mapping):
            pairs = [
                [self.canon(k, f"{where}[key]"), self.canon(v, f"{where}[{k!r}]")]
                for k, v in value.items()
            ]
            return ["dict", sorted(pairs, key=canonical_encode)]
        if isinstance(value, set | frozenset):
            return [
                "set",
                sorted((self.canon(x, f"{where}{{}}") for x in value), key=canonical_encode),
            ]
        if isinstance(value, slice | range):  # ColumnTransformer.output_indices_
            parts = [value.start, value.stop, value.step]
            return [type(value).__name__, [self.canon(p, where) for p in parts]]
        if is_instance(value, "lightgbm.basic", "Booster"):
            return _booster(value)
        if is_instance(value, "sklearn.base", "BaseEstimator"):
            return self._estimator(value, where)
        return self._other(value, where)

    def _estimator(self, value: Any, where: str) -> object:
        cls = type(value)
        code = class_code_digest(cls) if is_user_class(cls) else None
        library = cls.__module__.startswith("sklearn.")
        state = [
            [name, self.canon(item, f"{where}.{name}")]
            for name, item in sorted(_attributes(value))
            if not (library and name in _RUNTIME_ONLY)
        ]
        return ["estimator", qualified_name(cls), sorted(_libraries(cls).items()), code, state]

    def _numpy(self, value: Any, where: str) -> object:
        import numpy as np

        array = np.asarray(value)
        if array.dtype.names:  # structured: field by field, so padding bytes never count
            fields = [
                [name, numpy_digest(np.ascontiguousarray(array[name]))]
                for name in array.dtype.names
            ]
            return ["numpy-struct", list(array.shape), fields]
        if array.dtype.hasobject:
            items = [self.canon(x, f"{where}[{i}]") for i, x in enumerate(array.reshape(-1))]
            return ["numpy-object", list(array.shape), items]
        return ["numpy", numpy_digest(value)]

    def _other(self, value: Any, where: str) -> object:
        cls = type(value)
        top = cls.__module__.partition(".")[0]
        if top == "scipy" and hasattr(value, "tocsr") and hasattr(value, "nnz"):
            csr = value.tocsr(copy=True)
            csr.sum_duplicates()
            csr.sort_indices()
            arrays = [numpy_digest(a) for a in (csr.data, csr.indices, csr.indptr)]
            return ["sparse", list(csr.shape), arrays]
        if top in _MODEL_LIBRARIES:
            return ["library-object", qualified_name(cls), self.canon(_state(value), where)]
        raise self._refuse(value, where, "its state cannot be read canonically")

    def _callable(self, value: Any) -> object:
        module = getattr(value, "__module__", None) or type(value).__module__
        name = getattr(value, "__qualname__", None) or getattr(value, "__name__", repr(type(value)))
        code = None
        if isinstance(value, types.FunctionType | type) and is_user_module(module):
            from featurecache.fingerprint.code.identity import code_identity

            code = code_identity(value).digest
        versions = sorted(_versions_of(module).items())
        return ["callable", f"{module}.{name}", versions, code]

    def _numpy_other(self, value: Any, where: str) -> object:
        if type(value).__name__ == "RandomState":
            return ["RandomState", self.canon(value.get_state(), where)]
        bits = value.bit_generator
        return ["Generator", type(bits).__name__, self.canon(bits.state, where)]

    def _refuse(self, value: object, where: str, why: str) -> UnsupportedInputError:
        return UnsupportedInputError(
            self.argument,
            f"{qualified_name(type(value))} at {where} ({why})",
            ("scikit-learn estimators", "LightGBM Booster / LGBMModel", "MLflow models:/ URIs"),
            WHAT_TO_DO,
        )


def _is_callable(value: object) -> bool:
    cls = type(value)
    return isinstance(value, _FUNCTIONS) or (cls.__module__ == "numpy" and cls.__name__ == "ufunc")


def _booster(value: Any) -> object:
    text = value.model_to_string(num_iteration=-1)
    best = getattr(value, "best_iteration", 0)
    return ["lightgbm.Booster", sorted(_libraries(type(value)).items()), text, best]


def _attributes(value: object) -> list[tuple[str, object]]:
    found = dict(getattr(value, "__dict__", None) or {})
    for klass in type(value).__mro__:
        slots = vars(klass).get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            if slot not in ("__dict__", "__weakref__") and hasattr(value, slot):
                found[slot] = getattr(value, slot)
    return list(found.items())


def _state(value: Any) -> object:
    """A library helper object's state: its own ``__getstate__`` when its class defines one
    (Cython classes such as sklearn's ``Tree`` do), else its ``__reduce_ex__`` arguments and
    state, else its attributes."""
    getstate = getattr(type(value), "__getstate__", None)
    if getstate is not None and getstate is not getattr(object, "__getstate__", None):
        return ["getstate", value.__getstate__()]
    if getattr(value, "__dict__", None) is not None or hasattr(type(value), "__slots__"):
        return ["attributes", sorted(_attributes(value), key=lambda item: item[0])]
    reduced = value.__reduce_ex__(4)
    if isinstance(reduced, str):
        return ["global", reduced]
    _, args, *rest = reduced
    return ["reduce", args, rest[0] if rest else None]


def _libraries(cls: type) -> dict[str, str]:
    """``{distribution: version}`` of every third-party library in ``cls``'s MRO."""
    found: dict[str, str] = {}
    for klass in cls.__mro__:
        found.update(_versions_of(klass.__module__))
    return found


def _versions_of(module: str) -> dict[str, str]:
    from featurecache.fingerprint.code.libraries import origin_of_module

    if module.partition(".")[0] == "featurecache" or origin_of_module(module) != "library":
        return {}
    return {d: v for d in distributions_of(module) if (v := distribution_version(d)) is not None}


def is_user_module(module: str) -> bool:
    from featurecache.fingerprint.code.libraries import origin_of_module

    return origin_of_module(module) == "user"


def _shown_model(value: Any) -> dict[str, Any]:
    """The model's parameters as ``why`` shows them: ``get_params(deep=True)``, so a nested
    step's parameter is named (``logisticregression__C``); plain values as they are, nested
    estimators by class name, anything else by type. Display only: the key covers it all."""
    try:
        params = value.get_params(deep=True) if hasattr(value, "get_params") else {}
    except Exception:  # noqa: BLE001 - a user estimator's get_params only feeds the display
        return {}
    shown: dict[str, Any] = {}
    for name, item in sorted(params.items()):
        if is_model(item):
            shown[name] = f"{type(item).__qualname__}(…)"
        elif isinstance(item, _PLAIN):
            shown[name] = json_value(item)
        elif isinstance(item, list | tuple) and any(is_model(step) for step in _flat(item)):
            continue  # a Pipeline's ``steps``: their parameters are listed one by one
        else:
            plain = json_value(item) if isinstance(item, list | tuple | dict) else None
            shown[name] = plain if plain is not None else type(item).__qualname__
    return shown


def _flat(items: list[Any] | tuple[Any, ...]) -> list[Any]:
    return [x for item in items for x in (item if isinstance(item, tuple) else (item,))]


def model_changes(before: object, after: object) -> list[str]:
    """What differs between two model inputs as recorded with their keys, for ``why``:
    ``model LogisticRegression: param `C`: 1.0 → 0.5``, a library upgrade, or a refit."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    if before.get("type") != after.get("type"):
        return [f"model {before.get('type')} → {after.get('type')}"]
    name = str(after.get("type", "")).rpartition(".")[2]
    changes: list[str] = []
    libs_a, libs_b = before.get("libraries") or {}, after.get("libraries") or {}
    for dist in sorted(set(libs_a) | set(libs_b)):
        if libs_a.get(dist) != libs_b.get(dist):
            changes.append(f"model {name}: {dist} {libs_a.get(dist)} → {libs_b.get(dist)}")
    params_a, params_b = before.get("params") or {}, after.get("params") or {}
    for param in sorted(set(params_a) | set(params_b)):
        a, b = params_a.get(param, "<absent>"), params_b.get(param, "<absent>")
        if a != b:
            changes.append(f"model {name}: param `{param}`: {_short(a)} → {_short(b)}")
    if not changes and before.get("state") != after.get("state"):
        changes.append(f"model {name}: fitted state changed (same class and parameters: refitted)")
    return changes


def _short(item: object) -> str:
    text = repr(item)
    return text if len(text) <= 40 else text[:39] + "…"
