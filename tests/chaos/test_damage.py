"""Every kind of damage to an artifact, on eager and on lazy hits, read in a fresh process:
each is detected (the file lands in the store's quarantine folder), recomputed, and the value
handed out is the pure result. The broken variant disables the hit's checks in the reader
and shows that the same damage then reaches the caller (the detector is live)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.chaos.support import CHAOS_ENV, artifact_files, chaos_project, quarantined, read_back
from tests.e2e import Project

pytestmark = pytest.mark.slow  # fresh processes reading damaged artifacts

BOMB_ROWS = 4_000_000


def _pad_to(data: bytes, size: int) -> bytes:
    """A valid Parquet file padded to ``size`` bytes: zeros between the last page and the
    footer (the footer locates the pages by absolute offsets, and is found from the end)."""
    assert data[-4:] == b"PAR1"
    assert len(data) <= size, f"cannot pad {len(data)} bytes down to {size}"
    (footer_len,) = struct.unpack("<i", data[-8:-4])
    footer_start = len(data) - 8 - footer_len
    padded = data[:footer_start] + bytes(size - len(data)) + data[footer_start:]
    assert pq.read_metadata(pa.BufferReader(padded)).num_rows >= 0  # still a Parquet file
    return padded


def _parquet_bytes(table: pa.Table) -> bytes:
    """Compressed, one row group, big pages, no statistics: as small as the values allow."""
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        compression_level=19,
        row_group_size=max(table.num_rows, 1),
        data_page_size=1 << 28,
        write_statistics=False,
    )
    return bytes(sink.getvalue().to_pybytes())


def flip(data: bytes, table: pa.Table) -> bytes:
    """One byte of the marker value flipped (the first occurrence: a data or dictionary page)."""
    at = data.index(b"m-MARKER-") + len(b"m-MARKER-")
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def truncate(data: bytes, table: pa.Table) -> bytes:
    return data[: len(data) // 2]


def empty(data: bytes, table: pa.Table) -> bytes:
    return b""


def impostor(data: bytes, table: pa.Table) -> bytes:
    """Another valid Parquet file, same schema, rows and columns, other values, padded to the
    artifact's size: only the content hash can tell."""
    other = table.set_column(
        1,
        "x",
        pa.array(np.zeros(table.num_rows, dtype=table.schema.field("x").type.to_pandas_dtype())),
    )
    return _pad_to(_parquet_bytes(other), len(data))


def rewrite(data: bytes, table: pa.Table) -> bytes:
    """Bytes rewritten in place: every occurrence of the marker (values and statistics)."""
    assert b"m-MARKER-" in data
    return data.replace(b"m-MARKER-", b"m-MARKEX-")


def bomb(data: bytes, table: pa.Table) -> bytes:
    """A highly compressible file (same columns, millions of rows) padded to the size."""
    columns = []
    for field in table.schema:
        if pa.types.is_integer(field.type):
            columns.append(pa.array(np.zeros(BOMB_ROWS, dtype=field.type.to_pandas_dtype())))
        else:
            columns.append(
                pa.DictionaryArray.from_arrays(
                    pa.array(np.zeros(BOMB_ROWS, dtype=np.int32)), pa.array(["a-filler"])
                ).cast(field.type)
            )
    big = pa.Table.from_arrays(columns, schema=table.schema)
    return _pad_to(_parquet_bytes(big), len(data))


DAMAGES: dict[str, Callable[[bytes, pa.Table], bytes]] = {
    "flip": flip,
    "truncate": truncate,
    "empty": empty,
    "impostor": impostor,
    "rewrite": rewrite,
    "bomb": bomb,
}
KINDS = list(DAMAGES)
EAGER_KEYS = list(range(len(KINDS)))  # eager key i gets damage KINDS[i]
LAZY_KEYS = [100 + i for i in range(len(KINDS))]  # lazy key 100 + i gets damage KINDS[i]


def _publish_and_damage(project: Project) -> dict[str, str]:
    """Publish every key, then damage each artifact by its key; {artifact id: "feature:key"}."""
    out = read_back(project, eager=EAGER_KEYS, lazy=LAZY_KEYS)
    assert set(out["status"].values()) == {"ok"}, out
    files = artifact_files(project)
    assert len(files) == len(EAGER_KEYS) + len(LAZY_KEYS)
    damaged: dict[str, str] = {}
    for path in files:
        table = pq.read_table(path)
        key = table.column("i")[0].as_py()
        kind = KINDS[key % 100]
        label = f"{'lazy' if key >= 100 else 'eager'}:{key}"
        data = path.read_bytes()
        new = DAMAGES[kind](data, table)
        assert new != data
        if kind not in ("truncate", "empty"):
            assert len(new) == len(data), kind  # same size: the size check cannot tell
        path.chmod(0o644)
        path.write_bytes(new)
        damaged[path.parent.name + path.stem] = f"{label} ({kind})"
    return damaged


def test_every_damage_kind_is_quarantined_and_recomputed_on_eager_and_lazy_hits(
    tmp_path: Path,
) -> None:
    project = chaos_project(tmp_path / "proj")
    damaged = _publish_and_damage(project)

    out = read_back(project, eager=EAGER_KEYS, lazy=LAZY_KEYS)

    wrong = {k: v for k, v in out["status"].items() if v != "ok"}
    assert wrong == {}, f"damage reached the caller: {wrong}"
    assert out["misses"] == len(damaged) and out["hits"] == 0, out  # every one recomputed
    quarantine = {p.name.split("-")[0] for p in quarantined(project)}
    assert quarantine == set(damaged), (
        f"not quarantined: {[damaged[a] for a in set(damaged) - quarantine]}"
    )
    # The recomputed artifacts are hits again, and right.
    again = read_back(project, eager=EAGER_KEYS, lazy=LAZY_KEYS)
    assert set(again["status"].values()) == {"ok"}, again
    assert again["hits"] == len(damaged), again


def test_broken_variant_without_hit_checks_the_damage_reaches_the_caller(tmp_path: Path) -> None:
    """The detector above is live: with verify_file and verify_footer disabled in the reader,
    every kind of damage is handed out (a wrong value or an error), and nothing is quarantined."""
    project = chaos_project(tmp_path / "proj")
    damaged = _publish_and_damage(project)

    out = read_back(project, eager=EAGER_KEYS, lazy=LAZY_KEYS, broken=True)

    caught = {label: out["status"][label.split(" ")[0]] for label in damaged.values()}
    undetected = {label: status for label, status in caught.items() if status == "ok"}
    assert undetected == {}, f"the detector missed damage with the checks off: {undetected}"
    assert quarantined(project) == []
    assert CHAOS_ENV  # the damage relies on uncompressed artifacts
