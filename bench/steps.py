"""Where a request's CPU goes, step by step, in one process: named functions wrapped with clocks.

A sampling profiler (py-spy) shows shares of sampled time, and sampling a threaded process also
catches the interpreter's lock changing hands. ``Steps`` measures instead: each named function
is replaced, where its caller looks it up, by a wrapper that reads the thread's CPU clock and
the wall clock around the call. Time is kept per path of nested steps, so a function called
under two steps (the driver's execute under the user's read and under the write) is counted
under each, and each step's own time (what its named sub-steps leave) is printed as ``(rest)``.

The clocks cost time themselves: a wrapper about 2 µs in a tight loop (reading the thread's CPU
clock is a system call), of which part falls inside the step it times and all of it inside the
step that called it. ``Steps`` measures both parts on a probe when it is made and the report
takes them off every step (for each call, and for each wrapped call beneath it). Measured in a
tight loop, where the wrapper's code is in the CPU's caches, that correction is a lower bound:
a secured read with its 16 steps clocked still costs 196–200 µs corrected, against 183–190
unwrapped (``bench/profile_read.py`` with and without ``--steps``).

A step is ``("module:attribute", label)``: the module where the caller finds the name, and the
attribute there (``Class.method`` for a method). Steps print nested as they were called, each
level in the order the steps are listed.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

Step = tuple[str, str]


def _resolve(spec: str) -> tuple[Any, str, Any]:
    """``(owner, attribute, current value as stored)`` of ``module:attribute``."""
    module_name, _, attribute = spec.partition(":")
    owner: Any = importlib.import_module(module_name)
    *outer, name = attribute.split(".")
    for part in outer:
        owner = getattr(owner, part)
    stored = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    return owner, name, stored


class _Probe:
    """Two empty steps, one calling the other: what the clocks themselves cost."""

    @staticmethod
    def outer() -> None:
        _Probe.inner()

    @staticmethod
    def inner() -> None:
        return None


Costs = tuple[float, float]  # (CPU, wall) seconds


class Steps:
    """Clocks around ``steps``, installed while ``installed()`` is entered."""

    def __init__(self, steps: Sequence[Step], *, calibrate: bool = True) -> None:
        self.steps = list(steps)
        self.cpu: defaultdict[tuple[str, ...], float] = defaultdict(float)
        self.wall: defaultdict[tuple[str, ...], float] = defaultdict(float)
        self.calls: Counter[tuple[str, ...]] = Counter()
        self._local = threading.local()
        for spec, _ in self.steps:
            _resolve(spec)  # a step that no longer exists fails here, not silently
        # Per call: what a wrapper adds to its own step, and what it adds to the calling step.
        self.inside, self.beneath = self._overheads() if calibrate else ((0.0, 0.0), (0.0, 0.0))

    @staticmethod
    def _overheads(calls: int = 20_000) -> tuple[Costs, Costs]:
        probe = Steps([(f"{__name__}:_Probe.outer", "outer"), (f"{__name__}:_Probe.inner", "inner")],
                      calibrate=False)
        with probe.installed():
            for _ in range(calls):
                _Probe.outer()
        inner, outer = ("outer", "inner"), ("outer",)
        return ((probe.cpu[inner] / calls, probe.wall[inner] / calls),
                ((probe.cpu[outer] - probe.cpu[inner]) / calls,
                 (probe.wall[outer] - probe.wall[inner]) / calls))

    def corrected(self, path: tuple[str, ...]) -> Costs:
        """``path``'s CPU and wall seconds without what the clocks cost (``_overheads``)."""
        beneath = sum(calls for p, calls in self.calls.items()
                      if len(p) > len(path) and p[:len(path)] == path)
        return (self.cpu[path] - self.calls[path] * self.inside[0] - beneath * self.beneath[0],
                self.wall[path] - self.calls[path] * self.inside[1] - beneath * self.beneath[1])

    def reset(self) -> None:
        self.cpu.clear()
        self.wall.clear()
        self.calls.clear()

    def _clocked(self, label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        local = self._local

        def clocked(*args: Any, **kwargs: Any) -> Any:
            outer = getattr(local, "path", ())
            local.path = path = (*outer, label)
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.cpu[path] += time.thread_time() - cpu
                self.wall[path] += time.perf_counter() - wall
                self.calls[path] += 1
                local.path = outer

        return clocked

    @contextmanager
    def installed(self) -> Iterator[Steps]:
        undo: list[tuple[Any, str, Any]] = []
        try:
            for spec, label in self.steps:
                owner, name, stored = _resolve(spec)
                undo.append((owner, name, stored))
                if isinstance(stored, staticmethod | classmethod):
                    setattr(owner, name, type(stored)(self._clocked(label, stored.__func__)))
                else:
                    setattr(owner, name, self._clocked(label, stored))
            yield self
        finally:
            for owner, name, stored in reversed(undo):
                setattr(owner, name, stored)

    def report(self, per: int) -> list[str]:
        """The table: each path's calls, CPU and wall microseconds per ``per`` requests (the
        clocks' own cost taken off), then its sub-steps and its own rest, indented by depth."""
        lines = [f"  {'step':60s} {'calls':>5s} {'CPU µs':>8s} {'wall µs':>8s}"]
        order = [label for _, label in self.steps]

        def row(name: str, depth: int, calls: str, cpu: float, wall: float) -> None:
            lines.append(f"  {'  ' * depth + name:60s} {calls:>5s} {cpu / per * 1e6:8.1f}"
                         f" {wall / per * 1e6:8.1f}")

        def under(path: tuple[str, ...]) -> None:
            children = sorted((p for p in self.cpu if len(p) == len(path) + 1
                               and p[:-1] == path), key=lambda p: order.index(p[-1]))
            for child in children:
                row(child[-1], len(path), f"{self.calls[child] / per:.1f}", *self.corrected(child))
                under(child)
            if path and children:
                cpu, wall = self.corrected(path)
                row("(rest)", len(path), "", cpu - sum(self.corrected(c)[0] for c in children),
                    wall - sum(self.corrected(c)[1] for c in children))

        under(())
        return lines
