"""The bench's instruments measure what they say: ``bench/steps.py`` clocks each named step
where its caller finds it, nested as called, and puts every function back afterwards; the step
lists of the profiling scripts name functions that exist."""

from __future__ import annotations

import pytest

from bench.profile_login import LOGIN_STEPS
from bench.profile_read import READ_STEPS
from bench.steps import Steps


class Work:
    calls: list[str] = []

    @staticmethod
    def outer(n: int) -> int:
        return Work.inner(n) + Work.inner(n)

    @staticmethod
    def inner(n: int) -> int:
        Work.calls.append("inner")
        return sum(range(n))

    def method(self) -> int:
        return Work.inner(10)


MODULE = __name__


def test_steps_nest_as_called_and_are_restored() -> None:
    originals = dict(Work.__dict__)
    steps = Steps([(f"{MODULE}:Work.outer", "outer"), (f"{MODULE}:Work.inner", "inner"),
                   (f"{MODULE}:Work.method", "method")])
    with steps.installed():
        assert Work.outer(20_000) == 2 * sum(range(20_000))  # the wrapped functions still work
        Work.outer(20_000)
        Work.inner(5)
        assert Work().method() == sum(range(10))
    assert dict(Work.__dict__) == originals  # every function is back, as it was stored
    assert dict(steps.calls) == {("outer",): 2, ("outer", "inner"): 4, ("inner",): 1,
                                 ("method",): 1, ("method", "inner"): 1}
    assert steps.cpu[("outer",)] >= steps.cpu[("outer", "inner")] > 0
    Work.outer(3)
    assert sum(steps.calls.values()) == 9  # nothing is counted once uninstalled
    table = steps.report(2)
    assert [line.split()[0] for line in table[1:]] == [
        "outer", "inner", "(rest)", "inner", "method", "inner", "(rest)"]
    assert table[1].split()[1] == "1.0"  # calls per request: 2 calls over 2 requests


def test_the_report_takes_the_clocks_own_cost_off() -> None:
    """Each call's own clock reading, and each wrapped call's whole wrapper in the step above
    it: an empty step corrected is about nothing, where its raw time is the clocks'."""
    steps = Steps([(f"{MODULE}:Work.outer", "outer"), (f"{MODULE}:Work.inner", "inner")])
    assert steps.beneath[0] >= steps.inside[0] > 0  # measured on the probe at start
    with steps.installed():
        for _ in range(2000):
            Work.outer(0)  # two empty inner calls each
    raw = steps.cpu[("outer",)] / 2000
    corrected = steps.corrected(("outer",))[0] / 2000
    assert raw >= 2 * steps.beneath[0]  # two wrapped calls beneath, each costing its wrapper
    assert abs(corrected) < raw / 2  # most of the raw time was the clocks'
    assert steps.corrected(("outer", "inner")) < (steps.cpu[("outer", "inner")],
                                                  steps.wall[("outer", "inner")])


def test_a_step_that_does_not_exist_fails_at_once() -> None:
    with pytest.raises((AttributeError, KeyError)):
        Steps([(f"{MODULE}:Work.gone", "gone")])
    with pytest.raises(ModuleNotFoundError):
        Steps([("app.no_such_module:thing", "thing")])


@pytest.mark.parametrize("listed", [LOGIN_STEPS, READ_STEPS], ids=["login", "read"])
def test_the_profiling_scripts_steps_exist(listed: tuple[tuple[str, str], ...]) -> None:
    steps = Steps(listed, calibrate=False)  # resolves every name
    assert len({label for _, label in listed}) == len(listed)  # labels are the tree's keys
    assert steps.calls == {}
