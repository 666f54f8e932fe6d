"""RL config errors name the field by its dotted path; unknown environments say how to fix them."""

import pytest

from tfdl.rl.config import DQNConfig, PPOConfig, parse_rl_config
from tfdl.rl.environments import make_vector_env
from tfdl.schema import ConfigError


@pytest.mark.parametrize(
    "tree, message",
    [
        ({"agent": {"name": "dqn", "gama": 0.9}}, "rl.agent.gama: unknown field"),
        ({"environment": {"num_envs": 0}}, "rl.environment.num_envs: Input should be greater than or equal to 1"),
        ({"agent": {"name": "ppo", "clip_range": 1.5}}, "rl.agent.clip_range: Input should be less than 1"),
        ({"agent": {"name": "sac"}}, "does not match any of the expected tags: 'dqn', 'reinforce', 'a2c', 'ppo'"),
        ({"environment": {"vectorization": "threads"}}, "rl.environment.vectorization"),
        ({"agent": {"name": "ppo", "n_steps": 5, "minibatches": 4}}, "agent.minibatches (4) must divide"),
        ({"agent": {"name": "dqn", "batch_size": 10, "buffer_size": 5}}, "rl.agent: batch_size (10)"),
        ({"total_stepz": 5}, "rl.total_stepz: unknown field"),
    ],
)
def test_bad_fields_are_named(tree, message):
    with pytest.raises(ConfigError) as error:
        parse_rl_config(tree)
    assert message in str(error.value)


def test_agent_is_picked_by_name_with_its_own_defaults():
    config = parse_rl_config({"agent": {"name": "dqn", "dueling": True}})
    assert isinstance(config.agent, DQNConfig) and config.agent.dueling and config.agent.learning_rate == 1e-4
    assert isinstance(parse_rl_config({}).agent, PPOConfig)


def test_unknown_environment_says_what_to_do():
    with pytest.raises(ConfigError, match="rl.environment.name: unknown Gymnasium environment 'CartPol-v1'.*CartPole-v1"):
        make_vector_env("CartPol-v1", 2)
