"""tfdl.rl: deep reinforcement learning on Gymnasium, trained, checkpointed, evaluated and exported like any model.

Agents: DQN (replay, prioritized replay, target network, double, dueling),
REINFORCE with a baseline, A2C and PPO (categorical and Gaussian). Start with
`run_agent(RLConfig(...), seed, run_dir, model_name)`; `play` runs an
exported policy. The building blocks the agents share (TD targets, Q-network,
replay buffer, log-probabilities, PPO's loss, GAE) are public too, for
experiments and teaching.
"""

import importlib

from tfdl.rl.config import A2CConfig, DQNConfig, EnvironmentConfig, PPOConfig, ReinforceConfig, RLConfig, parse_rl_config

# Names whose modules import TensorFlow: loaded on first use, so validating a config stays light.
_LAZY = {
    "run_agent": "tfdl.rl.agent_run",
    "play": "tfdl.rl.playback",
    "dqn_targets": "tfdl.rl.dqn",
    "build_q_network": "tfdl.rl.networks",
    "ReplayBuffer": "tfdl.rl.replay",
    "categorical_log_prob": "tfdl.rl.distributions",
    "ppo_clipped_loss": "tfdl.rl.ppo",
    "generalized_advantages": "tfdl.rl.returns",
}

__all__ = [
    "A2CConfig", "DQNConfig", "EnvironmentConfig", "PPOConfig", "ReinforceConfig", "RLConfig", "parse_rl_config",
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tfdl.rl' has no attribute {name!r}")
