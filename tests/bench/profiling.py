"""`BENCH_PROFILE=1 make bench`: py-spy samples every service process during the create-order
slices, and the bench prints, per process, the functions that took the most samples: by own
time (the function itself running) and by total time (it or what it called).

py-spy reads the processes' memory from outside (ptrace permission: root, or
kernel.yama.ptrace_scope 0, or CAP_SYS_PTRACE in a container); --nonblocking so it never pauses
them. Idle threads are left out, so the samples are where the CPU went. When py-spy is missing
or may not read a process, the bench says why and goes on without the profile."""

from __future__ import annotations

import itertools
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

SAMPLES_PER_SECOND = 100
TOP = 12


def py_spy() -> str | None:
    """The py-spy beside this Python (the dev dependency), else one on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def read_collapsed(text: str) -> Counter[tuple[str, ...]]:
    """py-spy's raw output: a line per stack, `outer;...;inner count`."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def top_functions(
    stacks: Counter[tuple[str, ...]], top: int = TOP
) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """All the samples; the `top` functions by own samples and by total samples (a function
    counted once per stack however often it recurs in it). py-spy names a frame
    `function (file:first line)`, the file as imported. The total ranking leaves out the
    frames that only ever pass on to one same callee (the start-up chain: runpy, main, the
    loop's run): they would repeat their callee's figure at the top."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    callees: dict[str, set[str]] = {}
    for stack, count in stacks.items():
        own[stack[-1]] += count
        for frame in set(stack):
            total[frame] += count
        for caller, callee in itertools.pairwise(stack):
            callees.setdefault(caller, set()).add(callee)
    for frame, called in callees.items():
        if len(called) == 1 and not own[frame]:
            del total[frame]
    return sum(stacks.values()), own.most_common(top), total.most_common(top)


def summary(name: str, stacks: Counter[tuple[str, ...]], top: int = TOP) -> list[str]:
    samples, own, total = top_functions(stacks, top)
    if not samples:
        return [f"{name}: no samples"]
    lines = [f"{name}: {samples} samples at {SAMPLES_PER_SECOND}/s, idle threads left out"]
    for title, ranked in (("own", own), ("total", total)):
        lines.append(f"  by {title} time:")
        lines += [f"    {count * 100 / samples:5.1f} %  {frame}" for frame, count in ranked]
    return lines


class Profiler:
    """py-spy on each process for the length of a slice; the samples add up over the slices.
    After the first failure it says why once and stays off."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.stacks: dict[str, Counter[tuple[str, ...]]] = {}
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.binary = py_spy()
        self.failure = None if self.binary else "py-spy is not installed (make install adds it)"

    def start(self, pids: dict[str, int]) -> None:
        if self.failure or not self.binary:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, pid in pids.items():
            self.running[name] = subprocess.Popen(
                [
                    self.binary,
                    "record",
                    "--nonblocking",
                    "--function",
                    "--format",
                    "raw",
                    "--rate",
                    str(SAMPLES_PER_SECOND),
                    "--output",
                    str(self._out(name)),
                    "--pid",
                    str(pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )

    def stop(self) -> None:
        """Each py-spy writes its samples on SIGINT; they are added to the process's."""
        running, self.running = self.running, {}
        for process in running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for name, process in running.items():
            _, error = process.communicate(timeout=60)
            out = self._out(name)
            if process.returncode != 0 or not out.exists():
                self.failure = self.failure or (
                    f"py-spy on {name} failed ({process.returncode}): "
                    + error.decode(errors="replace").strip()[-500:]
                )
                continue
            self.stacks.setdefault(name, Counter()).update(read_collapsed(out.read_text()))
            out.unlink()

    def _out(self, name: str) -> Path:
        return self.out_dir / f"{name}.txt"

    def report(self) -> list[str]:
        lines = [f"profile not taken: {self.failure}"] if self.failure else []
        for name, stacks in self.stacks.items():
            lines += summary(name, stacks)
        return lines
