"""The training loop's schedule: what is due after each step, decided in one place."""

from __future__ import annotations

from fdsgan_train.tick import Due, Schedule


def _steps(schedule: Schedule, action: str) -> list[int]:
    return [s for s in range(1, schedule.total + 1) if getattr(schedule.due(s), action)]


def test_periodic_actions_and_the_last_step():
    s = Schedule(total=10, steps_per_epoch=4, log_every=3, sample_every=5, checkpoint_every=4,
                 keep_every=8)  # fmt: skip
    assert _steps(s, "log") == [3, 6, 9, 10]
    assert _steps(s, "sample") == [5, 10]
    assert _steps(s, "checkpoint") == [4, 8, 10]
    assert _steps(s, "keep") == [8]
    assert _steps(s, "epoch_end") == [4, 8]
    assert _steps(s, "validate") == [4, 8, 10]
    assert _steps(s, "stop") == [10]


def test_nothing_due_means_no_host_sync():
    s = Schedule(total=100, steps_per_epoch=50, log_every=10, sample_every=25,
                 checkpoint_every=40, val_every_epoch=False)  # fmt: skip
    assert s.due(7) == Due() and not s.due(7).sync
    assert _steps(s, "sync") == [10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 100]
    assert _steps(s, "validate") == [100]


def test_from_config():
    train = {"log_every": 2, "sample_every": 3, "checkpoint_every": 4, "keep_every": None,
             "val_every_epoch": True}  # fmt: skip
    s = Schedule.from_config(train, total=6, steps_per_epoch=3)
    assert s == Schedule(6, 3, 2, 3, 4, None, True)
    assert _steps(s, "keep") == []
