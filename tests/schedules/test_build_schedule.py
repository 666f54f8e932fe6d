"""build_schedule maps each name to its class and explains unknown names and parameters."""

import keras
import pytest

from tfdl import schedules
from tfdl.schedules import (
    CosineDecayWithWarmup,
    CyclicLearningRate,
    ExponentialDecay,
    StepDecay,
    TransformerSchedule,
    build_schedule,
)

CASES = [
    ("step", StepDecay, {"initial_learning_rate": 0.1, "every_steps": 10}),
    ("exponential", ExponentialDecay, {"initial_learning_rate": 0.1, "decay_steps": 1000, "decay_rate": 0.96}),
    ("cosine_warmup", CosineDecayWithWarmup, {"peak_learning_rate": 1e-3, "warmup_steps": 10, "decay_steps": 100}),
    ("cyclic", CyclicLearningRate, {"base_learning_rate": 1e-3, "max_learning_rate": 1e-2, "step_size": 20}),
    ("transformer", TransformerSchedule, {"d_model": 128}),
]


@pytest.mark.parametrize("name, schedule_class, params", CASES)
def test_builds_the_named_schedule_with_its_params(name, schedule_class, params):
    schedule = build_schedule(name, **params)
    assert type(schedule) is schedule_class
    assert schedule.get_config() == schedule_class(**params).get_config()
    assert isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule)


def test_every_exported_schedule_has_a_name():
    assert {c for _, c, _ in CASES} == set(schedules.SCHEDULES.values())
    assert set(schedules.__all__) >= {c.__name__ for _, c, _ in CASES} | {"build_schedule"}


def test_unknown_name_lists_the_known_ones():
    known = "cosine_warmup, cyclic, exponential, step, transformer"
    with pytest.raises(ValueError, match=f"Unknown schedule 'linear'; known schedules: {known}"):
        build_schedule("linear", initial_learning_rate=0.1)


def test_unknown_parameter_names_the_accepted_ones():
    with pytest.raises(ValueError, match=r"schedule 'step'.*takes: initial_learning_rate, drop, every_steps, name"):
        build_schedule("step", initial_learning_rate=0.1, every=10)


def test_bad_values_still_raise_the_schedule_error():
    with pytest.raises(ValueError, match="decay_steps must be > 0"):
        build_schedule("exponential", initial_learning_rate=0.1, decay_steps=0, decay_rate=0.5)
