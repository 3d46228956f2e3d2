"""Code identity: the change / no-change matrix in fresh processes over real files edited on
disk, the laws of normalisation, and golden digests and keys under different hash seeds.
In-process behaviour is in ``test_code_identity_inprocess.py``."""

from __future__ import annotations

import shutil
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from featurecache.catalog.records import EntryRecord
from featurecache.fingerprint.code.normalise import source_digest
from featurecache.fingerprint.types import CodeIdentity
from featurecache.keys import build_key
from featurecache.ops.key_diff import explain_change
from tests.fingerprint.userproject import (
    BASE_FILES,
    edit,
    finish,
    identities,
    start_identities,
    write_project,
)

F = "pipeline/features.py"
U = "pipeline/util.py"
SESSIONS = "pipeline.features:sessions"
POLARS_VERSION = "2.1.0-test"


@dataclass(frozen=True)
class Case:
    id: str
    target: str
    edits: list[tuple[str, str, str]]
    changes: bool
    why: str | None = None  # a message `featurecache why` must give for this change
    fake_after: dict[str, str] = field(default_factory=dict)


REFORMATTED = '''
def sessions(
    clicks,
    gap_minutes=30,
):
    """Sessions from clicks."""
    s = Sessionizer(
        gap_minutes
    )
    total = (
        clean_ts(clicks)
        + util.GAP
        + pipeline.other.helper_b(clicks)
        + s.split(clicks)
    )
    scale = lambda v: (v * 2)  # noqa: E731

    def bump(v):
        return (v + LOCAL)

    return local_helper(bump(scale(total),)) + 1
'''
ORIGINAL_SESSIONS = (
    textwrap.dedent(BASE_FILES[F])
    .split("def sessions", 1)[1]
    .split("\n\n\ndef unrelated_in_features")[0]
)

CASES = [
    # -- must change --
    Case(
        "body literal",
        SESSIONS,
        [(F, "))) + 1", "))) + 2")],
        True,
        "function body of `sessions` changed",
    ),
    Case(
        "helper in same module",
        SESSIONS,
        [(F, "x + 10", "x + 11")],
        True,
        "helper `local_helper` in `pipeline/features.py` changed",
    ),
    Case(
        "helper via import m; m.f()",
        SESSIONS,
        [("pipeline/other.py", "x * 3", "x * 4")],
        True,
        "helper `helper_b` in `pipeline/other.py` changed",
    ),
    Case(
        "helper via from m import f",
        SESSIONS,
        [(U, "_base(x) * 2", "_base(x) * 3")],
        True,
        "helper `clean_ts` in `pipeline/util.py` changed",
    ),
    Case(
        "helper's helper",
        SESSIONS,
        [(U, "return x + 1", "return x + 2")],
        True,
        "helper `_base` in `pipeline/util.py` changed",
    ),
    Case(
        "module constant",
        SESSIONS,
        [(U, "GAP = 30", "GAP = 45")],
        True,
        "constant `GAP` in `pipeline/util.py`: 30 → 45",
    ),
    Case(
        "default argument",
        SESSIONS,
        [(F, "gap_minutes=30", "gap_minutes=31")],
        True,
        "default `gap_minutes` of `sessions`: 30 → 31",
    ),
    Case(
        "closure value (factory)",
        "pipeline.features:by_factory",
        [(F, "make_feature(45)", "make_feature(46)")],
        True,
        "closure value `gap` of `make_feature.<locals>.feature`: 45 → 46",
    ),
    Case(
        "method of a project class",
        SESSIONS,
        [(U, "* self.scale", "+ self.scale")],
        True,
        "method `Sessionizer.split` in `pipeline/util.py` changed",
    ),
    Case(
        "class attribute",
        SESSIONS,
        [(U, "scale = 2", "scale = 3")],
        True,
        "attribute `Sessionizer.scale` in `pipeline/util.py` changed",
    ),
    Case(
        "nested function",
        SESSIONS,
        [(F, "v + LOCAL", "v - LOCAL")],
        True,
        "function body of `sessions` changed",
    ),
    Case("lambda", SESSIONS, [(F, "v * 2", "v * 3")], True),
    Case(
        "constant read by a nested function",
        SESSIONS,
        [(F, "LOCAL = 5", "LOCAL = 6")],
        True,
        "constant `LOCAL` in `pipeline/features.py`: 5 → 6",
    ),
    Case(
        "decorator option",
        "pipeline.features:decorated",
        [(F, "lazy=False", "lazy=True")],
        True,
        "option `lazy`: False → True",
    ),
    Case(
        "version bumped",
        "pipeline.features:decorated",
        [(F, 'version="1"', 'version="2"')],
        True,
        "version salt '1' → '2'",
    ),
    Case(
        "mutual recursion edited",
        "pipeline.features:recursive",
        [(U, "return 1 if n <= 0", "return 2 if n <= 0")],
        True,
        "helper `pong` in `pipeline/util.py` changed",
    ),
    Case(
        "library upgraded",
        "pipeline.features:uses_polars",
        [],
        True,
        f"polars {POLARS_VERSION} → 99.0",
        fake_after={"polars": "99.0"},
    ),
    # -- must keep --
    Case(
        "comment added",
        SESSIONS,
        [(F, "    # split into sessions\n", "    # one\n    # two\n")],
        False,
    ),
    Case(
        "docstring changed",
        SESSIONS,
        [(F, "Sessions from clicks.", "Sessions, documented.")],
        False,
    ),
    Case("helper docstring changed", SESSIONS, [(U, "Clean timestamps.", "Clean ts.")], False),
    Case(
        "reformatted",
        SESSIONS,
        [(F, "def sessions" + ORIGINAL_SESSIONS, REFORMATTED.strip())],
        False,
    ),
    Case(
        "unrelated function in same module",
        SESSIONS,
        [
            (
                F,
                "def unrelated_in_features(x):\n    return x",
                "def unrelated_in_features(x):\n    return -x",
            )
        ],
        False,
    ),
    Case(
        "unrelated function in helper module",
        SESSIONS,
        [(U, "math.floor(x)", "math.ceil(x)")],
        False,
    ),
    Case(
        "unrelated constant",
        SESSIONS,
        [
            (F, 'UNUSED_CONSTANT = "x"', 'UNUSED_CONSTANT = "y"'),
            (U, "UNRELATED = 1", "UNRELATED = 2"),
        ],
        False,
    ),
    Case(
        "lines shifted above",
        SESSIONS,
        [(F, "LOCAL = 5\n", "LOCAL = 5\n\n\ndef added_above():\n    return 1\n")],
        False,
    ),
]


Results = dict[str, Any]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Results]:
    """The base project's identities, then each case edited into its own copy of the project
    and run in a fresh process (several at once). Identities do not depend on the project's
    directory (tested below), so every case compares with the one baseline."""
    base = tmp_path_factory.mktemp("base")
    write_project(base, BASE_FILES)
    targets = sorted({c.target for c in CASES})
    fake = {"polars": POLARS_VERSION}

    def run(case: Case) -> Results:
        root = tmp_path_factory.mktemp("case")
        shutil.copytree(base, root, dirs_exist_ok=True)
        for rel, old, new in case.edits:
            edit(root, rel, old, new)
        return identities(root, [case.target], fake_versions=case.fake_after or fake)

    baseline = start_identities(base, targets, fake_versions=fake)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(zip([c.id for c in CASES], pool.map(run, CASES), strict=True))
    results["<baseline>"] = finish(baseline)
    return results


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@pytest.mark.slow  # the matrix fixture runs every case in a fresh process
def test_matrix(case: Case, matrix: dict[str, Results]) -> None:
    before = matrix["<baseline>"][case.target]
    after = matrix[case.id][case.target]
    assert before["components"]["warnings"] == []
    if case.changes:
        assert before["digest"] != after["digest"], case.id
    else:
        assert before["digest"] == after["digest"], case.id
    if case.why is not None:
        messages = explain_change(_entry(before, "a"), _entry(after, "b")).messages()
        assert case.why in messages, messages


def test_edit_between_runs_in_the_same_directory(tmp_path: Path) -> None:
    write_project(tmp_path, BASE_FILES)
    first = identities(tmp_path, [SESSIONS])[SESSIONS]
    edit(tmp_path, U, "return x + 1", "return x + 1  # a comment")
    assert identities(tmp_path, [SESSIONS])[SESSIONS]["digest"] == first["digest"]
    edit(tmp_path, U, "return x + 1", "return x + 3")
    assert identities(tmp_path, [SESSIONS])[SESSIONS]["digest"] != first["digest"]


@pytest.mark.slow  # the matrix fixture runs every case in a fresh process
def test_digest_does_not_depend_on_the_project_directory(matrix: dict[str, Results]) -> None:
    # "comment added" ran in another directory; its digest equals the baseline's.
    assert matrix["<baseline>"][SESSIONS]["digest"] == matrix["comment added"][SESSIONS]["digest"]


@pytest.mark.slow  # the matrix fixture runs every case in a fresh process
def test_mutual_recursion_terminates_and_records_both(matrix: dict[str, Results]) -> None:
    deps = matrix["<baseline>"]["pipeline.features:recursive"]["components"]["dependencies"]
    assert {"pipeline.util:ping", "pipeline.util:pong"} <= set(deps)


@pytest.mark.slow  # the matrix fixture runs every case in a fresh process
def test_third_party_is_versioned_not_hashed(matrix: dict[str, Results]) -> None:
    components = matrix["<baseline>"]["pipeline.features:uses_polars"]["components"]
    assert components["libraries"] == {"polars": POLARS_VERSION}
    assert not any(key.startswith("polars") for key in components["dependencies"])
    sessions = matrix["<baseline>"][SESSIONS]["components"]
    assert sessions["libraries"] == {}  # math is standard library: not versioned, not hashed
    assert set(sessions["dependencies"]) >= {
        "pipeline.util:clean_ts",
        "pipeline.util:_base",
        "pipeline.util:GAP",
        "pipeline.util:Sessionizer",
        "pipeline.other:helper_b",
        "pipeline.features:local_helper",
        "pipeline.features:LOCAL",
        "pipeline.features:sessions.<default>.gap_minutes",
    }


def _entry(identity: dict[str, Any], key: str) -> EntryRecord:
    code = CodeIdentity(identity["digest"], "q", "", identity["components"])
    built = build_key("f", code, {})
    return EntryRecord(key * 32, "f", identity["digest"], "0" * 32, "polars", built.components)


# -- normalisation laws ---------------------------------------------------------------------

SNIPPETS = [
    "def f(x, y=3):\n    z = x + y\n    if z > 2:\n        return [i for i in range(z)]\n    return None\n",
    "class C:\n    a = 1\n\n    def m(self, q):\n        return {k: q for k in 'ab'}\n",
    "def g(*args, **kw):\n    total = 0\n    for a in args:\n        total += a\n    return total, kw\n",
]


@settings(max_examples=60, deadline=None)
@given(
    index=st.integers(0, len(SNIPPETS) - 1),
    comments=st.lists(st.booleans(), min_size=8, max_size=8),
    blanks=st.lists(st.booleans(), min_size=8, max_size=8),
    text=st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=20
    ),
)
def test_comments_and_blank_lines_never_count(
    index: int, comments: list[bool], blanks: list[bool], text: str
) -> None:
    source = SNIPPETS[index]
    lines = source.splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        if blanks[i % 8]:
            out.append("")
        out.append(f"{line}  # {text}" if comments[i % 8] else line)
    assert source_digest("\n".join(out) + "\n") == source_digest(source)


@given(index=st.integers(0, len(SNIPPETS) - 1), doc=st.text(max_size=30))
@settings(max_examples=30, deadline=None)
def test_docstrings_never_count_but_code_does(index: int, doc: str) -> None:
    source = SNIPPETS[index]
    header, _, rest = source.partition(":\n")
    documented = f"{header}:\n    {doc!r}\n{rest}"
    assert source_digest(documented) == source_digest(source)
    assert source_digest(source.replace("return", "return 1 or", 1)) != source_digest(source)


# -- golden digests and keys ------------------------------------------------------------------

GOLDEN = Path(__file__).with_name("golden_code.json")


@pytest.mark.slow  # a fresh process per hash seed
@pytest.mark.parametrize("seed", ["0", "1", "random"])
def test_golden_digests_and_keys_are_stable(seed: str) -> None:
    """Pinned digests, in fresh processes under different hash seeds. A failure means keys
    changed meaning: if deliberate, bump KEY_SCHEME_VERSION and regenerate the fixture with
    ``python -m tests.fingerprint.golden_compute --write``."""
    import json
    import subprocess

    from featurecache.hashing import KEY_SCHEME_VERSION
    from tests.fingerprint.userproject import REPO_ROOT, python_env

    proc = subprocess.run(
        [sys.executable, "-m", "tests.fingerprint.golden_compute"],
        cwd=REPO_ROOT,
        env=python_env(REPO_ROOT, hash_seed=seed),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    golden = json.loads(GOLDEN.read_text())
    assert golden["key_scheme"] == KEY_SCHEME_VERSION, "regenerate golden_code.json"
    assert json.loads(proc.stdout) == golden
