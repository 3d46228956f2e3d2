"""The local tier's bound (``store.tier``): least recently used copies go first, held copies
never, temp files of killed downloads are cleared, and the ledger spares a walk of the folder
while it says a download fits. Real files in a temp folder; no remote store is needed."""

from __future__ import annotations

import os
import time
from pathlib import Path

from featurecache.store.tier import LEDGER_NAME, STALE_TEMP_SECONDS, USED_SUFFIX, LocalTier

IDS = [f"{i:02x}" * 16 for i in range(1, 6)]


def _copy(tier: LocalTier, artifact_id: str, used_at: float, size: int = 100) -> Path:
    """A copy in the tier (as a download leaves it), last used at ``used_at``."""
    path = tier.path_of(artifact_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    path.chmod(0o444)
    os.utime(path, (used_at - 10, used_at - 10))
    used = path.with_suffix(USED_SUFFIX)
    used.touch()
    os.utime(used, (used_at, used_at))
    return path


def _held(tier: LocalTier) -> list[str]:
    return sorted(p.parent.name + p.stem for p in tier.root.glob("??/*.parquet"))


def test_the_least_recently_used_copies_make_room(tmp_path: Path) -> None:
    tier = LocalTier(tmp_path / "tier", max_bytes=250)
    now = time.time()
    for age, artifact_id in zip((300, 200, 100), IDS, strict=False):
        _copy(tier, artifact_id, now - age)
    assert tier.evict(incoming=100) == 200
    assert _held(tier) == [IDS[2]]
    assert not tier.path_of(IDS[0]).with_suffix(USED_SUFFIX).exists()
    assert tier.usage().bytes == 100


def test_a_held_copy_is_never_evicted(tmp_path: Path) -> None:
    tier = LocalTier(tmp_path / "tier", max_bytes=300)
    now = time.time()
    oldest = _copy(tier, IDS[0], now - 300)
    for age, artifact_id in zip((200, 100), IDS[1:], strict=False):
        _copy(tier, artifact_id, now - age)
    holds = tier.root / ".holds" / f"otherhost-{os.getpid()}"  # another host: never swept
    holds.mkdir(parents=True)
    os.link(oldest, holds / f"{IDS[0]}.hold")
    tier.evict(incoming=100)
    assert _held(tier) == [IDS[0], IDS[2]]


def test_temp_files_of_killed_downloads_are_removed_and_live_ones_count(tmp_path: Path) -> None:
    tier = LocalTier(tmp_path / "tier", max_bytes=900)
    _copy(tier, IDS[0], time.time())
    shard = tier.path_of(IDS[0]).parent
    stale, live = shard / ".tmp-killed.parquet", shard / ".tmp-live.parquet"
    stale.write_bytes(b"x" * 500)
    old = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    live.write_bytes(b"x" * 850)
    assert tier.evict(incoming=0) == 500 + 100  # the stale temp, then the copy (850 in flight)
    assert not stale.exists() and live.exists()


def test_the_ledger_spares_the_walk_until_it_is_stale(tmp_path: Path) -> None:
    tier = LocalTier(tmp_path / "tier", max_bytes=250)
    now = time.time()
    _copy(tier, IDS[0], now - 300)
    tier.reserve(100)  # no ledger yet: a walk writes it (100 here + 100 coming)
    assert (tier.root / LEDGER_NAME).read_text().split()[0] == "200"
    _copy(tier, IDS[1], now - 200)  # the download reserved above
    tier.reserve(50)  # 250 fits: the ledger answers, nothing is walked or evicted
    assert _held(tier) == IDS[:2]
    _copy(tier, IDS[2], now - 100, size=50)
    tier.reserve(100)  # 350 does not fit: a walk evicts the oldest
    assert _held(tier) == IDS[1:3]
    assert (tier.root / LEDGER_NAME).read_text().split()[0] == "250"

    # A ledger whose walk is too old is not trusted, even when it says the download fits.
    _copy(tier, IDS[3], now, size=100)  # planted behind the ledger's back: 250 here
    (tier.root / LEDGER_NAME).write_text("0 0\n")
    tier.reserve(10)
    assert tier.usage().bytes + 10 <= 250
    assert IDS[3] in _held(tier)
