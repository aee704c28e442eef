"""A worker keeps the memory it frees: a second snapshot-sized allocation faults no pages in."""

from __future__ import annotations

import subprocess
import sys

# allocate and drop 40 MB (past glibc's own mmap ceiling of 32 MB) twice; print the second's
# minor page faults
SNIPPET = """
import resource, sys
from firewatch.stream.heap import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = b"x" * (40 << 20)
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults()
print(faults())
"""


def second_allocation_faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", SNIPPET, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def test_kept_memory_is_not_faulted_in_again() -> None:
    pages = (40 << 20) // 4096
    assert second_allocation_faults("default") >= pages // 2  # given back, faulted in again
    assert second_allocation_faults("keep") < pages // 20  # kept
