"""GATEWAY_GC_THRESHOLD parsing and the tuning the lifespan applies (app/gc_tuning.py)."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from app.gc_tuning import DEFAULT_GC_THRESHOLD, FULL_EVERY_S, Paced, parse_gc_threshold


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", Paced()),
        ("paced", Paced(full_every_s=FULL_EVERY_S)),
        ("paced:30", Paced(full_every_s=30.0)),
        ("paced:0", Paced(full_every_s=0.0)),
        ("python", None),
        ("10000", (10000, *DEFAULT_GC_THRESHOLD[1:])),
        ("1000, 10, 10", (1000, 10, 10)),
    ],
)
def test_parse(value: str, expected: tuple[int, int, int] | None) -> None:
    assert parse_gc_threshold(value) == expected


@pytest.mark.parametrize("value", ["lots", "1,2,3,4", "-5", "paced:x", "paced:-1", "paced:nan"])
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


def test_paced_collects_young_objects_and_freezes_survivors() -> None:
    """In a child: automatic collection off, a cycle made after startup is collected by the
    paced task, survivors end up frozen, and cancelling the task turns collection back on."""
    code = """
import asyncio, gc, weakref
from app.gc_tuning import Paced, tune_gc

class Node:
    pass

async def main():
    task = tune_gc(Paced(full_every_s=0.0, pace_s=0.01))
    assert task is not None and not gc.isenabled()
    frozen = gc.get_freeze_count()
    a, b = Node(), Node()
    a.peer, b.peer = b, a
    gone = weakref.ref(a)
    kept = [Node() for _ in range(100)]
    del a, b
    for _ in range(200):
        await asyncio.sleep(0.01)
        if gone() is None and gc.get_freeze_count() >= frozen + len(kept):
            break
    print(gone() is None, gc.get_freeze_count() >= frozen + len(kept), end=" ")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    print(gc.isenabled())

asyncio.run(main())
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "True True True"
