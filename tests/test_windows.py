"""``t4r_dmt.windows.valid_half`` on request ids of any type: integer ids keep their split exactly, text ids
split about 50:50, the same in every process, whatever the row order."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from t4r_dmt.windows import valid_half

INTEGER_IDS = np.array([1, 7, 123456789012, -5, 0, 2**62, 2**63 - 1, 42])


def test_integer_ids_keep_their_split() -> None:
    """Pinned from the int64-only definition: preprocessed data of integer ids does not change."""
    assert valid_half(INTEGER_IDS).astype(int).tolist() == [0, 1, 0, 1, 1, 0, 0, 1]
    assert valid_half(INTEGER_IDS, 3).astype(int).tolist() == [0, 0, 1, 0, 0, 1, 0, 0]
    assert np.array_equal(valid_half(INTEGER_IDS.astype(np.int32)[:5]), valid_half(INTEGER_IDS[:5]))


def test_text_ids_split_about_half_stably() -> None:
    ids = np.array([f"r{i:07d}" for i in range(20_000)], dtype=object)
    valid = valid_half(ids)
    assert 0.48 < valid.mean() < 0.52
    order = np.random.default_rng(0).permutation(len(ids))
    assert np.array_equal(valid_half(ids[order]), valid[order])  # each id's side, not the row order, decides
    assert np.array_equal(valid_half(ids.astype(str)), valid)  # numpy text arrays hash alike
    other = valid_half(ids, seed=1)
    assert 0.48 < other.mean() < 0.52 and 0.4 < (valid == other).mean() < 0.6  # the seed mix applies to text too
    assert valid_half(np.array(["r0000123", "u1", "1", "é"], dtype=object)).astype(int).tolist() == [1, 0, 0, 0]
    # "1" as text is hashed as text: a log's text ids do not take the split of equal-looking integers.
    code = ("import numpy as np; from t4r_dmt.windows import valid_half; "
            "print(valid_half(np.array([f'r{i:07d}' for i in range(20000)], dtype=object)).sum())")
    other_process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                   env={"PYTHONHASHSEED": "7", "PATH": "", "PYTHONPATH": ":".join(sys.path)})
    assert int(other_process.stdout.strip()) == int(valid.sum())


def test_ids_of_another_type_are_refused() -> None:
    with pytest.raises(TypeError, match="ids must be integers or text, got dtype float64"):
        valid_half(np.array([1.5]))
