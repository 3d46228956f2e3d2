"""Stale-hit regressions for data locations passed as ``str``, each run in a NEW process: a
feature given ``f"{folder}/bureau.csv"``, ``"data/"``, ``"data/train/*.parquet"`` or a list of
str paths recomputes after one of its files is edited (also in place: same size, mtime put
back), added or removed, `why` names the file, and it hits while nothing changed. Runs on
SQLite + a local folder and on PostgreSQL + S3."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import SESSION, Project
from tests.fixtures_s3 import S3Endpoint

FEATURES = """
import glob

import polars as pl

from featurecache import cached_feature


@cached_feature
def bureau(path: str) -> pl.DataFrame:
    return pl.read_csv(path)


@cached_feature
def everything(folder: str) -> pl.DataFrame:
    names = sorted(glob.glob(folder + "**/*.csv", recursive=True))
    return pl.DataFrame({"files": [len(names)], "rows": [sum(len(pl.read_csv(n)) for n in names)]})


@cached_feature
def train(pattern: str) -> pl.DataFrame:
    return pl.read_parquet(pattern).select(pl.col("x").sum())


@cached_feature
def both(paths: list[str]) -> pl.DataFrame:
    return pl.concat([pl.read_csv(p) for p in paths])
"""

RUN = (
    SESSION
    + """
import featurecache
from pipeline.features import both, bureau, everything, train

folder = "data"
results = {
    "bureau": bureau(f"{folder}/bureau.csv")["amount"].to_list(),
    "everything": everything("data/").row(0),
    "train": train("data/train/*.parquet")["x"].to_list(),
    "both": both(["data/bureau.csv", "data/labels.csv"]).height,
}
engine = featurecache.default_cache().engine
engine.flush()
events = {}
for (feature, kind), count in engine.session.by_feature.items():
    if count:
        events[feature] = kind
reasons = {
    name: featurecache.why(name).explanation.messages()
    for name, kind in events.items()
    if kind == "miss"
}
print(json.dumps({"events": events, "results": results, "reasons": reasons}))
"""
)

ALL = ("bureau", "everything", "train", "both")


def write_parquet(path: Path, values: list[int]) -> None:
    import polars as pl

    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"x": values}).write_parquet(path)


def rewrite_in_place(path: Path, old: bytes, new: bytes) -> None:
    """Same size, same mtime: only the bytes (and the ctime, which users cannot set) change."""
    st = path.stat()
    data = path.read_bytes()
    assert data.count(old) == 1 and len(old) == len(new)
    path.write_bytes(data.replace(old, new))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def expect(result: dict[str, Any], misses: set[str], step: str) -> None:
    events = result["events"]
    assert {name for name in ALL if events.get(name) == "miss"} == misses, (step, result)
    assert {name for name in ALL if events.get(name) == "hit"} == set(ALL) - misses, (step, result)


def why_text(result: dict[str, Any], feature: str) -> str:
    return " | ".join(result["reasons"][feature])


def scenario(project: Project) -> list[tuple[str, Any]]:
    project.write("pipeline/__init__.py", "")
    project.write("pipeline/features.py", FEATURES)
    data = project.root / "data"
    data.mkdir()
    (data / "bureau.csv").write_text("id,amount\n1,10\n2,20\n")
    (data / "labels.csv").write_text("id,amount\n1,0\n")
    write_parquet(data / "train" / "2024-01-01.parquet", [1, 2])
    write_parquet(data / "train" / "2024-01-02.parquet", [3, 4])
    report: list[tuple[str, Any]] = []

    first = project.run_json(RUN)
    expect(first, set(ALL), "first run")
    assert first["results"] == {"bureau": [10, 20], "everything": [2, 3], "train": [10], "both": 3}
    expect(project.run_json(RUN), set(), "second run, nothing changed")

    # bureau.csv edited in place: same size, same mtime.
    rewrite_in_place(data / "bureau.csv", b"2,20", b"2,21")
    edited = project.run_json(RUN)
    report.append(("bureau.csv edited in place", edited))
    expect(edited, {"bureau", "everything", "both"}, "bureau.csv edited")
    assert edited["results"]["bureau"] == [10, 21]
    assert "argument `path`: file data/bureau.csv changed" in why_text(edited, "bureau")
    assert "argument `folder`: file data/bureau.csv changed" in why_text(edited, "everything")
    assert "file data/bureau.csv changed" in why_text(edited, "both")
    expect(project.run_json(RUN), set(), "unchanged after the edit")

    # A parquet file of the glob rewritten with other values, its mtime put back.
    target = data / "train" / "2024-01-02.parquet"
    st = target.stat()
    write_parquet(target, [3, 5])
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    changed = project.run_json(RUN)
    report.append(("a parquet file rewritten", changed))
    expect(changed, {"train", "everything"}, "parquet rewritten")  # data/ holds train/ too
    assert changed["results"]["train"] == [11]
    assert "argument `pattern`: file data/train/2024-01-02.parquet changed" in why_text(
        changed, "train"
    )
    assert "file data/train/2024-01-02.parquet changed" in why_text(changed, "everything")

    # A file added to the glob and the folder.
    write_parquet(data / "train" / "2024-01-03.parquet", [100])
    (data / "extra.csv").write_text("id,amount\n9,9\n")
    added = project.run_json(RUN)
    report.append(("files added", added))
    expect(added, {"train", "everything"}, "files added")
    assert added["results"]["train"] == [111] and added["results"]["everything"] == [3, 4]
    assert "file data/train/2024-01-03.parquet added" in why_text(added, "train")
    assert "file data/extra.csv added" in why_text(added, "everything")

    # A file removed (from the glob) and one from the list.
    (data / "train" / "2024-01-01.parquet").unlink()
    (data / "labels.csv").write_text("id,amount\n1,0\n2,0\n")
    removed = project.run_json(RUN)
    report.append(("a file removed, the list's second file edited", removed))
    expect(removed, {"train", "everything", "both"}, "file removed")
    assert removed["results"]["train"] == [108] and removed["results"]["both"] == 4
    assert "file data/train/2024-01-01.parquet removed" in why_text(removed, "train")
    assert "file data/labels.csv changed" in why_text(removed, "both")

    expect(project.run_json(RUN), set(), "unchanged at the end")
    return report


@pytest.mark.slow
def test_str_paths_recompute_after_data_edits_in_fresh_processes(tmp_path: Path) -> None:
    report = scenario(Project.create(tmp_path / "proj"))
    (tmp_path / "report.json").write_text(json.dumps(report, indent=1))


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.s3
def test_str_paths_recompute_on_postgres_and_s3(
    tmp_path: Path, pg_catalog_url: str, s3_store_url: str
) -> None:
    scenario(Project.create(tmp_path / "proj", catalog_url=pg_catalog_url, store_url=s3_store_url))


S3_FEATURES = """
import boto3
import polars as pl

from featurecache import cached_feature


def _read(url: str) -> bytes:
    bucket, _, key = url[len("s3://") :].partition("/")
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


@cached_feature
def one(url: str) -> pl.DataFrame:
    return pl.DataFrame({"body": [_read(url).decode()]})


@cached_feature
def under(prefix: str) -> pl.DataFrame:
    bucket, _, key = prefix[len("s3://") :].partition("/")
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
    return pl.DataFrame({"keys": [len(listed)]})
"""

S3_RUN = (
    SESSION
    + """
import os
import featurecache
from remote.features import one, under

root = os.environ["DATA_ROOT"]
results = {"one": one(f"{root}/train/a.csv")["body"][0], "under": under(f"{root}/train/")["keys"][0]}
print(json.dumps({"results": results, "session": _session()}))
"""
)


@pytest.mark.slow
@pytest.mark.s3
def test_s3_strings_recompute_after_object_edits_in_fresh_processes(
    tmp_path: Path, s3_endpoint: S3Endpoint, s3_store_url: str
) -> None:
    project = Project.create(tmp_path / "proj", store_url=s3_store_url)
    project.write("remote/__init__.py", "")
    project.write("remote/features.py", S3_FEATURES)
    client, bucket = s3_endpoint.client(), s3_endpoint.bucket()
    root = f"s3://{bucket}/data-{tmp_path.name}"
    key = f"data-{tmp_path.name}/train/a.csv"
    client.put_object(Bucket=bucket, Key=key, Body=b"x\n1\n")

    def run() -> Any:
        return project.run_json(S3_RUN, DATA_ROOT=root)

    first = run()
    assert first["session"] == {"hits": 0, "misses": 2}
    assert run()["session"] == {"hits": 2, "misses": 0}
    client.put_object(Bucket=bucket, Key=key, Body=b"x\n2\n")  # same size, new ETag
    edited = run()
    assert edited["session"] == {"hits": 0, "misses": 2}
    assert edited["results"]["one"] == "x\n2\n"
    client.put_object(Bucket=bucket, Key=f"data-{tmp_path.name}/train/b.csv", Body=b"x\n3\n")
    added = run()
    assert added["session"] == {"hits": 1, "misses": 1} and added["results"]["under"] == 2
    assert run()["session"] == {"hits": 2, "misses": 0}
