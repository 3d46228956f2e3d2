"""A composite split in one process is joined in another, as a second run of a user's script
does: the parts go through real Parquet files and the structure through JSON on disk. A
NamedTuple defined in the script's ``__main__`` comes back as that class in the next run of the
same script; a process whose ``__main__`` does not define it cannot join (the caller recomputes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.e2e import REPO

SCRIPT = """
import json
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from featurecache.parquet import read_artifact_file, write_parquet
from featurecache.results import codec
from tests.results.codec_support import assert_same, settings_in


class TrainTest(NamedTuple):
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    classes: np.ndarray
    meta: dict


def result() -> TrainTest:
    x = pd.DataFrame({"age": [31.0, 45.5, 22.0, 60.0], "city": ["a", "b", "a", "c"]})
    y = pd.Series([0, 1, 0, 1], name="churn", dtype="int8")
    meta = {"seed": 7, "ratio": 0.75, "when": np.datetime64("2024-05-01T10:00", "m")}
    return TrainTest(x[:3], x[3:], y[:3], y[3:], np.array(["no", "yes"]), meta)


folder = Path(sys.argv[2])
if sys.argv[1] == "write":
    split = codec.split(result(), "train_test")
    for i, part in enumerate(split.parts):
        write_parquet(part.table, folder / f"{i}.parquet", settings_in(folder), kind=part.kind)
    saved = {"structure": split.structure, "kinds": [part.kind for part in split.parts]}
    (folder / "structure.json").write_text(json.dumps(saved))
else:
    saved = json.loads((folder / "structure.json").read_text())
    parts = [read_artifact_file(folder / f"{i}.parquet", k) for i, k in enumerate(saved["kinds"])]
    back = codec.join(saved["structure"], parts)
    assert type(back) is TrainTest, type(back)
    assert_same(result(), back)
    print("joined", codec.describe(saved["structure"]))
"""

OTHER_MAIN = """
import json
import sys
from pathlib import Path

from featurecache.parquet import read_artifact_file
from featurecache.results import codec

folder = Path(sys.argv[1])
saved = json.loads((folder / "structure.json").read_text())
parts = [read_artifact_file(folder / f"{i}.parquet", k) for i, k in enumerate(saved["kinds"])]
try:
    codec.join(saved["structure"], parts)
except codec.CompositeStructureError as exc:
    print("refused:", exc)
"""


def run(script: Path, *args: str, seed: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_second_run_of_the_script_joins_what_the_first_split(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT))
    data = tmp_path / "artifacts"
    data.mkdir()
    run(script, "write", str(data), seed="1")
    out = run(script, "read", str(data), seed="2")
    assert out.strip() == (
        "joined TrainTest(pandas.DataFrame 3×2, pandas.DataFrame 1×2, pandas.Series int8 ×3, "
        "pandas.Series int8 ×1, numpy.ndarray <U3 2, dict(seed: int, ratio: float, "
        "when: numpy datetime64[m]))"
    )
    other = tmp_path / "other.py"
    other.write_text(textwrap.dedent(OTHER_MAIN))
    refused = run(other, str(data), seed="3")
    assert "NamedTuple class __main__.TrainTest is not defined in this process" in refused
