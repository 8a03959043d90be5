"""GATEWAY_GC_THRESHOLD parsing and the tuning the lifespan applies (app/gc_tuning.py)."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from app.gc_tuning import DEFAULT_GC_THRESHOLD, parse_gc_threshold


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", DEFAULT_GC_THRESHOLD),
        ("python", None),
        ("10000", (10000, *DEFAULT_GC_THRESHOLD[1:])),
        ("1000, 10, 10", (1000, 10, 10)),
    ],
)
def test_parse(value: str, expected: tuple[int, int, int] | None) -> None:
    assert parse_gc_threshold(value) == expected


@pytest.mark.parametrize("value", ["lots", "1,2,3,4", "-5"])
def test_parse_refuses(value: str) -> None:
    with pytest.raises(ValueError, match="GATEWAY_GC_THRESHOLD"):
        parse_gc_threshold(value)


def test_tune_freezes_and_sets_thresholds() -> None:
    # in a child: freezing the test process's heap would change every later test's collector
    code = (
        "import gc; from app.gc_tuning import tune_gc; tune_gc((12345, 7, 8)); "
        "print(gc.get_threshold(), gc.get_freeze_count() > 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(12345, 7, 8) True"
    assert gc.get_threshold() != (12345, 7, 8)
