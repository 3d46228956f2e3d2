"""The CLI at ``COLUMNS=80`` (any pipe): tables fit on one line per row with short ids, ``ls``
tells the calls of one feature apart, ``show`` keeps a wide schema short, flags look like
flags, ``--version`` and ``python -m featurecache`` work, gc says what kept everything and
ends with its summary, and errors carry one prefix."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import typer

from featurecache import FeatureCache
from featurecache.cli.main import app, main
from tests.cli.cli_support import cli_invoker
from tests.cli.test_help_docs import COMMANDS
from tests.e2e import REPO


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cache filled by real calls: one feature with a long name called with several
    argument sets and a file, and one wide (45-column) result."""
    root = tmp_path_factory.mktemp("polish")
    data = root / "clicks_2026_december_export.csv"
    data.write_text("user,ts\n1,2\n")
    with FeatureCache(catalog=f"sqlite:///{root / 'catalog.db'}", store=root / "artifacts") as fc:

        @fc.cached_feature(name="user_session_features_with_a_rather_long_name")
        def sessions(
            source: Path, gap_minutes: int = 30, label: str = "all", strict: bool = False
        ) -> pl.DataFrame:
            return pl.read_csv(source).with_columns(pl.lit(gap_minutes).alias("gap"))

        @fc.cached_feature(name="wide")
        def wide(n: int) -> pl.DataFrame:
            return pl.DataFrame({f"column_{i:03d}": [n] for i in range(45)})

        sessions(data)
        sessions(data, gap_minutes=15)
        sessions(data, gap_minutes=45, label="weekend sessions only, please", strict=True)
        wide(1)
    yield root


@pytest.fixture
def run(
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Any:
    monkeypatch.chdir(cache_dir)
    monkeypatch.setenv("FEATURECACHE_CATALOG", f"sqlite:///{cache_dir / 'catalog.db'}")
    monkeypatch.setenv("FEATURECACHE_STORE", str(cache_dir / "artifacts"))
    monkeypatch.setenv("COLUMNS", "80")

    return cli_invoker(capsys)


def table_lines(out: str) -> list[str]:
    """Every line but the header (which names the cache by its whole path)."""
    lines = out.splitlines()
    assert lines[0].startswith("cache: ")
    return lines[1:]


def artifact_of(run: Any, feature: str) -> str:
    rows = json.loads(run("ls", "--feature", feature, "--json")[1])
    return str(rows[0]["artifact_id"])


def test_ls_fits_80_columns_and_tells_calls_apart(run: Any) -> None:
    code, out, _ = run("ls")
    assert code == 0
    lines = table_lines(out)
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    assert lines[0] == "4 artifacts"
    assert lines[1].split() == [
        "feature", "artifact", "args", "rows", "size", "created", "used", "hits", "pin",
    ]  # fmt: skip
    rows = [line for line in lines[3:] if not line.startswith("wide ")]
    assert len(rows) == 3 and all("…" in row.split()[0] for row in rows)  # the long name, cut
    # Short ids, whole; one line per artifact.
    ids = {row["artifact_id"][:12] for row in json.loads(run("ls", "--json")[1])}
    assert {line.split()[1] for line in lines[3:]} == ids
    assert {_args_cell(row, 2)[:6] for row in rows} == {"source", "gap_mi"}
    # One feature's artifacts: the room goes to what tells its calls apart, the argument
    # values that differ from the defaults.
    _, out, _ = run("ls", "--feature", "user_session_features_with_a_rather_long_name")
    lines = table_lines(out)
    assert lines[0] == "3 artifacts of user_session_features_with_a_rather_long_name"
    assert lines[1].split()[:2] == ["artifact", "args"]
    assert all(len(line) <= 80 for line in lines[1:])
    cells = sorted(_args_cell(line, 1) for line in lines[3:])
    assert cells[0].startswith("gap_minutes=15 source=cl") and cells[0].endswith("…")
    assert cells[1].startswith('gap_minutes=45 label="we') and cells[1].endswith("…")
    assert cells[2] == "source=clicks_2026_december_export.csv"[: len(cells[2]) - 1] + "…"


def test_ls_shows_whole_argument_summaries_when_there_is_room(
    run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    _, out, _ = run("ls", "--feature", "user_session_features_with_a_rather_long_name")
    summaries = {_args_cell(line, 1) for line in table_lines(out)[3:]}
    assert summaries == {
        "source=clicks_2026_december_export.csv",
        "gap_minutes=15 source=clicks_2026_december_export.csv",
        'gap_minutes=45 label="weekend sessions only, please" '
        "source=clicks_2026_december_export.csv strict=true",
    }


def _args_cell(line: str, column: int) -> str:
    """A column of an ``ls`` row (columns are two or more spaces apart)."""
    return re.split(r"\s{2,}", line)[column]


def test_ls_json_gives_each_artifacts_arguments_whole(run: Any, cache_dir: Path) -> None:
    """Scripts tell a feature's artifacts apart by their arguments: every plain and path
    argument, defaults included, at its full value (the table's summary is cut to fit; a file
    outside any project is recorded by its absolute path)."""
    rows = json.loads(run("ls", "--json")[1])
    source = str(cache_dir / "clicks_2026_december_export.csv")
    by_feature = sorted(
        (row["args"] for row in rows if row["feature"] != "wide"),
        key=lambda args: args["gap_minutes"],
    )
    assert by_feature == [
        {"source": source, "gap_minutes": 15, "label": "all", "strict": False},
        {"source": source, "gap_minutes": 30, "label": "all", "strict": False},
        {"source": source, "gap_minutes": 45, "label": "weekend sessions only, please",
         "strict": True},
    ]  # fmt: skip
    assert [row["args"] for row in rows if row["feature"] == "wide"] == [{"n": 1}]


def test_ls_json_stays_an_array_of_rows_with_its_flag(run: Any) -> None:
    code, out, _ = run("ls", "--json")
    rows = json.loads(out)
    assert code == 0 and isinstance(rows, list) and len(rows) == 4
    assert {"artifact_id", "feature", "uri", "catalog"} <= set(rows[0])
    # A flag takes no value: `--json true` is a usage error that says so.
    code, _, err = run("ls", "--json", "true")
    assert code == 2 and "unexpected extra argument" in err


def test_show_cuts_a_wide_schema_after_40_columns_unless_full(run: Any) -> None:
    artifact = artifact_of(run, "wide")
    code, out, _ = run("show", artifact[:8])
    assert code == 0
    schema = [line for line in table_lines(out) if line.startswith("column_")]
    assert len(schema) == 40 and all(len(line) <= 80 for line in schema)
    assert "schema (45 columns)" in out
    assert "column_039" in out and "column_040" not in out
    assert "5 more columns with --full (or --json)" in out
    _, full, _ = run("show", artifact[:8], "--full")
    assert "column_044" in full and "more columns" not in full
    assert len(json.loads(run("show", artifact, "--json")[1])["schema"]) == 45


@pytest.mark.parametrize(
    "argv",
    [
        ("stats",),
        ("why", "user_session_features_with_a_rather_long_name"),
        ("verify",),
        ("gc", "--keep-last", "1", "--grace", "0s", "--dry-run"),
        ("gc", "--keep-last", "1", "--dry-run"),
        ("info",),
        ("show", "LONG"),
        ("show", "WIDE"),
    ],
    ids=lambda argv: "-".join(argv[:2]),
)
def test_everything_but_whole_paths_fits_80_columns(
    argv: tuple[str, ...], run: Any, cache_dir: Path
) -> None:
    if argv[-1] in ("LONG", "WIDE"):
        feature = "wide" if argv[-1] == "WIDE" else "user_session_features_with_a_rather_long_name"
        argv = (*argv[:-1], artifact_of(run, feature))
    code, out, _ = run(*argv)
    assert code == 0, out
    lines = table_lines(out)
    if argv[0] == "info":  # the lines above its table are whole paths
        lines = lines[lines.index("settings") :]
    # Whole paths, URIs, the feature's own long name in a sentence: free text, not tables.
    free_text = (str(cache_dir), "user_session_features_with_a_rather_long_name", "code  ")
    wide = [
        line for line in lines if len(line) > 80 and not any(text in line for text in free_text)
    ]
    assert wide == []


def test_show_key_table_cuts_long_values_with_an_ellipsis(run: Any) -> None:
    artifact = artifact_of(run, "user_session_features_with_a_rather_long_name")
    _, out, _ = run("show", artifact)
    lines = table_lines(out)
    rule = next(i for i, line in enumerate(lines) if line.startswith("kind ")) + 1
    key_table = lines[rule + 1 : rule + 12]
    assert all(len(line) <= 80 for line in key_table), "\n".join(key_table)
    assert any(line.startswith("key ") and line.rstrip().endswith("…") for line in key_table)


def test_gc_says_the_grace_period_kept_everything_and_ends_with_its_summary(run: Any) -> None:
    code, out, _ = run("gc", "--keep-last", "1", "--dry-run")
    assert code == 0
    lines = out.splitlines()
    assert lines[-2] == "the grace period (1h) kept 4 artifacts; add --grace 0 to collect them now"
    assert lines[-1] == "dry run: would delete nothing; kept 4 (4 within grace period)"
    code, out, _ = run("gc", "--keep-last", "1", "--grace", "0", "--dry-run")
    lines = out.splitlines()
    assert lines[-1].startswith("dry run: would delete 2 artifacts (")
    assert lines[-1].endswith("; kept 2 (2 --keep-last floor)")
    assert "grace period" not in out


def test_errors_have_one_prefix(run: Any) -> None:
    code, _, err = run("gc")
    assert code == 2
    assert err.startswith("featurecache: error: gc: no policy given")
    assert err.count("featurecache") == 1 + err.count("featurecache gc --")
    assert err.count("\n") == 1


def test_help_shows_flags_without_a_bool_metavar(capsys: pytest.CaptureFixture[str]) -> None:
    for path in COMMANDS:
        assert main([*path, "--help"]) == 0
        out = capsys.readouterr().out
        assert "<bool>" not in out, path
        assert all(len(line) <= 80 for line in out.splitlines()), path
    main(["ls", "--help"])
    assert re.search(r"^  --json\s+Print JSON", capsys.readouterr().out, re.MULTILINE)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert re.fullmatch(r"featurecache \S+ \(Python 3\.\d+\.\d+\S*\)\n", capsys.readouterr().out)


def test_python_dash_m_featurecache_is_the_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "featurecache", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("featurecache ")
    proc = subprocess.run(
        [sys.executable, "-m", "featurecache", "gc"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("featurecache: error: ")


def test_every_command_is_registered_once() -> None:
    names = [c.name for c in typer.main.get_command(app).commands.values()]  # type: ignore[attr-defined]
    assert len(names) == len(set(names)) and "info" in names


def test_a_pipe_gets_80_columns_without_being_told(cache_dir: Path) -> None:
    """``featurecache ls | less`` in a fresh process, no ``COLUMNS``: rich's width for a pipe."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(
        FEATURECACHE_CATALOG=f"sqlite:///{cache_dir / 'catalog.db'}",
        FEATURECACHE_STORE=str(cache_dir / "artifacts"),
        PYTHONPATH=str(REPO),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "featurecache", "ls"],
        cwd=cache_dir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = proc.stdout.splitlines()
    assert lines[1] == "4 artifacts" and len(lines) == 8
    assert all(len(line) <= 80 for line in lines[1:]), proc.stdout
