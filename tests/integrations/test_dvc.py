"""DVC integration against a real git + DVC repository made here: tracked inputs fingerprinted
through DVC's state database (and the md5 -> xxh3 alias), never a stale hit after a change,
``DvcPath`` pinned to a git revision, and ``featurecache export --dvc``."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from featurecache import FeatureCache
from featurecache.catalog import Catalog
from featurecache.cli.main import main
from featurecache.errors import DvcError, InputNotFoundError
from featurecache.fingerprint.files import FileFingerprinter
from featurecache.hashing import hash_file_bytes
from featurecache.integrations.dvc.path import DvcPath
from featurecache.integrations.dvc.state import DvcStateResolver
from tests.e2e import Project

pytest.importorskip("dvc", reason="the dvc extra is not installed")

pytestmark = pytest.mark.slow  # many git and dvc CLI subprocesses, and fresh Python processes

GIT = ["git", "-c", "user.name=featurecache", "-c", "user.email=fc@example.invalid"]


def csv(rows: int, factor: int) -> str:
    """A clickstream CSV; above DvcStateResolver's 1 MiB threshold for the tracked files."""
    return "user,clicks\n" + "".join(f"{i:06d},{i % 10 * factor}\n" for i in range(rows))


def total(text: str) -> int:
    return sum(int(line.split(",")[1]) for line in text.splitlines()[1:])


A_CSV = csv(140_000, 1)  # 1.26 MB
B_CSV = csv(130_000, 2)


def sh(cwd: Path, *argv: str) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{' '.join(argv)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout.strip()


def dvc(cwd: Path, *argv: str) -> str:
    return sh(cwd, sys.executable, "-m", "dvc", *argv)


def recorded_md5(dvc_file: Path) -> str:
    return str(yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"])


@dataclass
class Repo:
    root: Path
    project: Project
    v1: str  # the commit tagged v1


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """git + DVC: data/a.csv and data/b.csv tracked by ``.dvc`` sidecars, params.csv by git,
    data/untracked.csv by nothing; committed and tagged v1."""
    root = tmp_path_factory.mktemp("dvcrepo")
    project = Project.create(root)
    sh(root, *GIT, "init", "-q")
    dvc(root, "init", "-q")
    # DVC's state database lives here rather than in /var/tmp/dvc (config.local: not in git).
    site = tmp_path_factory.mktemp("dvc-site")
    (root / ".dvc" / "config.local").write_text(f"[core]\n    site_cache_dir = {site}\n")
    (root / "data").mkdir()
    (root / "data" / "a.csv").write_text(A_CSV)
    (root / "data" / "b.csv").write_text(B_CSV)
    (root / "data" / "untracked.csv").write_text(B_CSV)
    (root / "data" / "small.csv").write_text("user,clicks\n1,1\n")
    (root / "params.csv").write_text("k,v\n")
    (root / ".gitignore").write_text("cache/\n.featurecache/\n")
    dvc(root, "add", "-q", "data/a.csv", "data/b.csv", "data/small.csv")
    sh(root, *GIT, "add", "-A")
    sh(root, *GIT, "commit", "-qm", "data")
    sh(root, *GIT, "tag", "v1")
    return Repo(root, project, sh(root, "git", "rev-parse", "v1"))


@pytest.fixture
def catalog(tmp_path: Path) -> Any:
    opened = Catalog.open(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield opened
    opened.close()


def fingerprinter(repo: Repo, state: Path, catalog: Catalog) -> tuple[Any, DvcStateResolver]:
    files = FileFingerprinter(state, project_root=repo.root)
    resolver = DvcStateResolver(aliases=catalog)
    files.add_resolver(resolver)
    return files, resolver


# -- the resolver, in-process -------------------------------------------------------------------


def test_dvc_state_answers_once_the_alias_is_known(
    repo: Repo, catalog: Catalog, tmp_path: Path
) -> None:
    b = repo.root / "data" / "b.csv"
    md5 = recorded_md5(repo.root / "data" / "b.csv.dvc")
    files, resolver = fingerprinter(repo, tmp_path / "state1", catalog)
    first = files.fingerprint("src", b)
    # First sight: read once (md5 + xxh3 together); the canonical content is our xxh3.
    assert first.value["content"] == f"xxh3_128:{hash_file_bytes(str(b))}"
    assert resolver.stats.first_sights == 1 and resolver.stats.aliases_recorded == 1
    assert catalog.lookup_alias("md5", md5) == first.value["content"]
    assert files.files_hashed == 0  # the fingerprinter's own hashing never ran

    # Another process / machine (an empty stat cache): DVC's state + the alias, nothing read.
    files2, resolver2 = fingerprinter(repo, tmp_path / "state2", catalog)
    second = files2.fingerprint("src", b)
    assert second.fingerprint == first.fingerprint
    assert resolver2.stats.state_hits == 1 and resolver2.stats.bytes_hashed == 0
    assert files2.files_hashed == 0


def test_untracked_and_outside_files_never_ask_dvc(
    repo: Repo, catalog: Catalog, tmp_path: Path
) -> None:
    outside = tmp_path / "plain.csv"
    outside.write_text(B_CSV)
    files, resolver = fingerprinter(repo, tmp_path / "state", catalog)
    small = repo.root / "data" / "small.csv"  # tracked, but cheaper to read than to look up
    for path in (repo.root / "data" / "untracked.csv", repo.root / "params.csv", outside, small):
        assert files.fingerprint("src", path).value["content"].startswith("xxh3_128:")
    assert files.files_hashed == 4
    assert resolver.stats == type(resolver.stats)()  # not one lookup
    assert resolver.is_tracked(repo.root / "data" / "a.csv", repo.root)
    assert resolver.is_tracked(small, repo.root)
    assert not resolver.is_tracked(repo.root / "data" / "untracked.csv", repo.root)


def test_stage_outputs_in_dvc_lock_count_as_tracked(tmp_path: Path) -> None:
    (tmp_path / ".dvc").mkdir()
    (tmp_path / "stage").mkdir()
    (tmp_path / "stage" / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  prep:\n    cmd: python prep.py\n    outs:\n"
        "    - path: out\n      hash: md5\n      md5: 0123.dir\n"
    )
    resolver = DvcStateResolver(aliases=None)
    inside = tmp_path / "stage" / "out" / "part-0.parquet"
    assert resolver.dvc_root(inside.parent) == tmp_path
    assert resolver.is_tracked(inside, tmp_path)  # under a directory output of a stage
    assert not resolver.is_tracked(tmp_path / "stage" / "input.csv", tmp_path)
    assert not resolver.is_tracked(tmp_path / "out" / "part-0.parquet", tmp_path)
    assert resolver.dvc_root(tmp_path.parent) is None


def test_a_stale_dvc_state_is_caught_by_our_md5(
    repo: Repo, catalog: Catalog, tmp_path: Path
) -> None:
    """If DVC's state claimed another md5 for these bytes, no alias is recorded and the
    fingerprint is still the content's own hash."""
    b = repo.root / "data" / "b.csv"
    _files, resolver = fingerprinter(repo, tmp_path / "state", catalog)
    content = resolver._canonical(b, os.stat(b), "0" * 32)
    assert content == f"xxh3_128:{hash_file_bytes(str(b))}"
    assert resolver.stats.mismatches == 1 and resolver.stats.aliases_recorded == 0
    assert catalog.lookup_alias("md5", "0" * 32) is None


def test_importing_featurecache_and_plain_files_do_not_import_dvc(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a\n1\n")
    script = f"""
import sys
from pathlib import Path
import featurecache, featurecache.engine
from featurecache.fingerprint.files import FileFingerprinter
from featurecache.integrations.dvc.state import DvcStateResolver
files = FileFingerprinter(Path({str(tmp_path / "state")!r}))
files.add_resolver(DvcStateResolver(aliases=None))
files.fingerprint("p", Path({str(tmp_path / "x.csv")!r}))
featurecache.DvcPath
print(sorted(m for m in sys.modules if m.split(".")[0] in ("dvc", "dvc_data")))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# -- end to end: a decorated feature in fresh processes -------------------------------------------

FEATURE = """
from pathlib import Path
import polars as pl
from featurecache import cached_feature

@cached_feature
def clicks_per_user(data: Path) -> pl.DataFrame:
    return pl.read_csv(data).group_by("user").agg(pl.col("clicks").sum()).sort("user")
"""

CALL = """
import json
from pathlib import Path
import featurecache
from features import clicks_per_user
out = clicks_per_user(Path("data/a.csv"))
engine = featurecache.default_cache().engine
engine.publisher.flush()
stats = next(r for r in engine.files.resolvers if hasattr(r, 'stats')).stats
report = {
    "hits": engine.session.hits, "total": int(out["clicks"].sum()),
    "state_hits": stats.state_hits, "first_sights": stats.first_sights,
    "dvc_bytes": stats.bytes_hashed, "misses_or_doubts": stats.state_misses + stats.doubts,
    "files_hashed": engine.files.files_hashed,
}
report["key"] = engine.key_for(clicks_per_user, (Path("data/a.csv"),), {})[0].key_id
print(json.dumps(report))
"""


def test_tracked_input_through_dvc_state_and_never_a_stale_hit(repo: Repo, tmp_path: Path) -> None:
    project, a = repo.project, repo.root / "data" / "a.csv"
    project.write("features.py", FEATURE)

    def call(state: str) -> dict[str, Any]:
        return project.run_json(CALL, FEATURECACHE_STATE_DIR=str(tmp_path / state))

    cold = call("s1")  # first sight: DVC's state confirms, one read records the alias
    assert cold["hits"] == 0 and cold["first_sights"] == 1 and cold["total"] == total(A_CSV)
    warm = call("s2")  # a fresh stat cache: DVC's state + the alias, not one byte read
    assert warm["hits"] == 1 and warm["key"] == cold["key"]
    assert warm["state_hits"] == 1 and warm["dvc_bytes"] == 0 and warm["files_hashed"] == 0

    # touch: DVC's state no longer confirms the stat; our own hash decides: same content.
    os.utime(a)
    touched = call("s3")
    assert touched["misses_or_doubts"] == 1 and touched["files_hashed"] == 1
    assert touched["hits"] == 1 and touched["key"] == cold["key"]

    # Rewrite in place, same size, old mtime set back: DVC's state would still say md5 of
    # the old bytes (same inode, size and mtime); ctime gives it away.
    before = os.stat(a)
    changed = A_CSV.replace("000003,3\n", "000003,9\n")
    with open(a, "r+b") as handle:
        handle.write(changed.encode())
    os.utime(a, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(a).st_ino == before.st_ino and os.stat(a).st_size == before.st_size
    rewritten = call("s4")
    assert rewritten["hits"] == 0 and rewritten["key"] != cold["key"]
    assert rewritten["total"] == total(changed) and rewritten["state_hits"] == 0

    # An ordinary edit: a new key, and after `dvc add` the key stays (md5 -> the same xxh3).
    a.write_text(A_CSV + "999999,40\n")
    edited = call("s5")
    assert edited["hits"] == 0 and edited["total"] == total(A_CSV) + 40
    dvc(repo.root, "add", "-q", "data/a.csv")
    added = call("s6")
    assert added["key"] == edited["key"] and added["hits"] == 1
    assert added["first_sights"] + added["state_hits"] == 1  # DVC's state answered


# -- DvcPath pinned to a revision -----------------------------------------------------------------


def test_dvc_path_at_a_revision(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from featurecache.fingerprint.inputs import fingerprint_input

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where local_path() downloads

    files = FileFingerprinter(tmp_path / "state")
    # The workspace copy may have changed (the test above edits it): v1 is what counts.
    path = DvcPath(repo.root, "data/a.csv", rev="v1")
    fp = fingerprint_input("clicks", path, files=files)
    md5 = recorded_md5_at(repo, "v1", "data/a.csv.dvc")
    assert fp.kind == "dvc" and fp.value["content"] == f"md5:{md5}"
    assert fp.value["commit"] == repo.v1 and path.commit == repo.v1
    assert files.files_hashed == 0  # nothing downloaded or hashed
    assert path.read_bytes() == A_CSV.encode()
    local = path.local_path()
    assert local.read_text() == A_CSV and local.is_relative_to(tmp_path)
    shipped = pickle.loads(pickle.dumps(path))  # to a Dask / Ray worker: the commit goes along
    assert shipped == path and shipped._record == path.record()
    assert fp.source_uri is not None and fp.source_uri.endswith(f"#data/a.csv@{repo.v1}")
    # The same file by commit sha: the same fingerprint (content-addressed, not by name).
    by_sha = fingerprint_input("clicks", DvcPath(repo.root, "data/a.csv", rev=repo.v1), files=files)
    assert by_sha.fingerprint == fp.fingerprint and by_sha.kind == fp.kind
    # A file git tracks itself: its blob id.
    params = fingerprint_input("p", DvcPath(repo.root, "params.csv", rev="v1"), files=files)
    blob = sh(repo.root, "git", "rev-parse", "v1:params.csv")
    assert params.value["content"] == f"git-blob-sha1:{blob}"


def recorded_md5_at(repo: Repo, rev: str, dvc_file: str) -> str:
    return str(yaml.safe_load(sh(repo.root, "git", "show", f"{rev}:{dvc_file}"))["outs"][0]["md5"])


def test_dvc_path_errors(repo: Repo) -> None:
    with pytest.raises(TypeError, match="rev="):
        DvcPath(repo.root, "data/a.csv", rev="")
    with pytest.raises(ValueError, match="inside the repository"):
        DvcPath(repo.root, "../etc/passwd", rev="v1")
    with pytest.raises(InputNotFoundError, match="'clicks'"):
        from featurecache.integrations.dvc.path import fingerprint_dvc_path

        fingerprint_dvc_path("clicks", DvcPath(repo.root, "data/nope.csv", rev="v1"))
    with pytest.raises(DvcError, match="unknown git revision"):
        DvcPath(repo.root, "data/a.csv", rev="no-such-tag").record()


def test_dvc_path_keys_a_feature(repo: Repo, tmp_path: Path) -> None:
    import polars as pl

    with FeatureCache(f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "store") as cache:

        @cache.cached_feature
        def clicks(data: DvcPath) -> pl.DataFrame:
            return pl.read_csv(data.open()).select(pl.col("clicks").sum())

        path = DvcPath(repo.root, "data/b.csv", rev="v1")
        assert clicks(path)["clicks"][0] == total(B_CSV)
        assert clicks(DvcPath(repo.root, "data/b.csv", rev=repo.v1))["clicks"][0] == total(B_CSV)
        cache.engine.publisher.flush()
        assert cache.engine.session.hits == 1 and cache.engine.session.misses == 1


# -- export --dvc ---------------------------------------------------------------------------------


def test_export_imports_an_artifact_into_the_dvc_repo_and_pins_it(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import polars as pl

    catalog_url, store = f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "store"
    with FeatureCache(catalog_url, store) as cache:

        @cache.cached_feature(name="squares")
        def squares(n: int) -> pl.DataFrame:
            return pl.DataFrame({"x": list(range(n)), "y": [i * i for i in range(n)]})

        squares(100)
        cache.engine.publisher.flush()
        artifact_id = cache.engine.catalog.recent_entries("squares", 1)[0].artifact_id
    monkeypatch.setenv("FEATURECACHE_CATALOG", catalog_url)
    monkeypatch.setenv("FEATURECACHE_STORE", str(store))
    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    # Not inside a DVC repository: one line, nothing pinned.
    code, out, err = run("export", artifact_id[:8], "--dvc", str(tmp_path / "x.parquet"))
    assert code == 2 and out == "" and "not inside a DVC repository" in err
    assert len(err.strip().splitlines()) == 1

    (repo.root / "features").mkdir(exist_ok=True)
    code, out, err = run("export", "squares", "--dvc", str(repo.root / "features"), "--json")
    assert code == 0, err
    result = json.loads(out)
    imported = Path(result["path"])
    assert result["artifact_id"] == artifact_id and result["pinned"] is True
    assert imported.parent == repo.root / "features" and imported.name.startswith("squares-")
    record = yaml.safe_load(Path(result["dvc_file"]).read_text())
    assert record["frozen"] is True and record["deps"][0]["path"]
    assert record["outs"][0]["md5"] and record["outs"][0]["size"] == imported.stat().st_size
    with Catalog.open(catalog_url) as check:
        stored = check.get_artifact(artifact_id)
        assert stored is not None and stored.pinned
        assert hash_file_bytes(str(imported)) == stored.file_hash
    assert pl.read_parquet(imported).height == 100

    # Exporting onto an existing output fails in DVC: one typed line.
    code, _, err = run("export", artifact_id, "--dvc", str(imported))
    assert code == 2 and "dvc import-url failed" in err
