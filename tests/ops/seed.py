"""A real cache in a temp folder for maintenance tests: a catalog, a local store, and artifacts
published the way the cache publishes them (a real Parquet file first, then the catalog row)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import update

from featurecache.catalog import Catalog
from featurecache.catalog.database import run_write
from featurecache.catalog.models import Artifact
from featurecache.catalog.records import (
    ArtifactRecord,
    CodeVersionRecord,
    EntryRecord,
    Hit,
    LineageEdge,
)
from featurecache.hashing import hash_struct
from featurecache.store.base import ArtifactStore
from featurecache.store.local import LocalStore


@dataclass
class Cache:
    root: Path
    catalog: Catalog
    store: Any  # a LocalStore unless given another ArtifactStore

    @property
    def catalog_url(self) -> str:
        return self.catalog.url

    @classmethod
    def create(cls, root: Path, store: ArtifactStore | None = None) -> Cache:
        url = f"sqlite:///{root / 'catalog.db'}"
        return cls(root, Catalog.open(url), store or LocalStore(root / "artifacts"))

    def close(self) -> None:
        self.catalog.close()

    def path(self, artifact_id: str) -> Path:
        path = self.store.local_path(artifact_id)
        assert path is not None
        return path

    def publish(
        self,
        key: object,
        *,
        feature: str = "sessions",
        rows: int = 10,
        content: object = None,
        upstream: str | None = None,
        compute_seconds: float = 1.5,
    ) -> Hit:
        """Publish the output of one call: ``content`` names the data (same content, same
        artifact), ``key`` the call."""
        content = key if content is None else content
        table = pa.table({"x": list(range(rows)), "tag": [f"{content}-{i}" for i in range(rows)]})
        artifact_id = hash_struct(["seed-artifact", str(content), rows])
        stored = self.store.publish(artifact_id, lambda path: pq.write_table(table, path))
        code_digest = hash_struct(["seed-code", feature])
        lineage = [
            LineageEdge(
                "src", "xxh3_128:" + hash_struct(["src", str(key)]), None, "file:///data.csv"
            )
        ]
        if upstream is not None:
            lineage.append(LineageEdge("df", "xxh3_128:" + upstream, upstream, None))
        return self.catalog.publish(
            EntryRecord(
                key_id=hash_struct(["seed-key", feature, str(key)]),
                feature=feature,
                code_digest=code_digest,
                artifact_id=artifact_id,
                return_kind="arrow",
                components={"key_scheme": "1", "feature": feature, "inputs": {}},
            ),
            ArtifactRecord(
                artifact_id=artifact_id,
                uri=stored.uri,
                rows=rows,
                columns=2,
                schema=[{"name": "x", "type": "int64", "nullable": True}],
                size_bytes=stored.size_bytes,
                file_hash=stored.file_hash,
                compute_seconds=compute_seconds,
            ),
            lineage,
            CodeVersionRecord(code_digest, feature, f"def {feature}(src):\n    ...\n"),
        )

    def set_times(self, artifact_id: str, created: datetime, used: datetime | None = None) -> None:
        run_write(
            self.catalog.engine,
            lambda conn: conn.execute(
                update(Artifact)
                .where(Artifact.artifact_id == artifact_id)
                .values(created_at=created, last_used_at=used or created)
            ),
            what="set_times",
        )

    def age(self, artifact_id: str, hours: float, used_hours_ago: float | None = None) -> None:
        now = self.catalog.now()
        used = None if used_hours_ago is None else now - timedelta(hours=used_hours_ago)
        self.set_times(artifact_id, now - timedelta(hours=hours), used)

    def live_ids(self) -> set[str]:
        return {s.artifact_id for s in self.catalog.artifact_states() if s.live}

    def stored_ids(self) -> set[str]:
        return {obj.artifact_id for obj in self.store.iter_artifacts() if obj.artifact_id}
