"""GATEWAY_MALLOC_KEEP parsing and what the tuning does to a process (app/malloc_tuning.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.malloc_tuning import DEFAULT_KEEP, parse_keep


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", DEFAULT_KEEP), ("glibc", None), (" GLIBC ", None), ("1048576", 1048576), ("0", 0)],
)
def test_parse(value: str, expected: int | None) -> None:
    assert parse_keep(value) == expected


@pytest.mark.parametrize("value", ["lots", "-1", "1.5"])
def test_parse_refuses(value: str) -> None:
    with pytest.raises(ValueError, match="GATEWAY_MALLOC_KEEP"):
        parse_keep(value)


# In a child, so the test process keeps its own malloc: the page faults of 20 rounds of the
# buffers a 4 MB turn passes through (the body, a copy, a bytearray), as /proc counts them.
_CHILD = """
import resource, sys
from app.malloc_tuning import parse_keep, tune_malloc
applied = tune_malloc(parse_keep(sys.argv[1]))
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(2):  # the heap grows once
    a = b"x" * (4 << 20); b = a + b"y"; c = bytearray(b); del a, b, c
f0 = faults()
for _ in range(20):
    a = b"x" * (4 << 20); b = a + b"y"; c = bytearray(b); del a, b, c
print(applied is not None, (faults() - f0) // 20)
"""


def _child(keep: str) -> tuple[bool, int]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, keep], capture_output=True, text=True, check=True
    )
    applied, faults = out.stdout.split()
    return applied == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_tuned_heap_keeps_big_buffers() -> None:
    tuned, tuned_faults = _child("")
    untouched, glibc_faults = _child("glibc")
    assert tuned and not untouched
    # glibc maps and zeroes ~12 MB of fresh pages per round (~3,000 faults); tuned, the
    # buffers are reused from the heap
    assert glibc_faults > 1000
    assert tuned_faults < glibc_faults // 10
