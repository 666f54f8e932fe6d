"""tfdl.rl: deep reinforcement learning on Gymnasium, trained, checkpointed, evaluated and exported like any model.

Agents: DQN (replay, prioritized replay, target network, double, dueling),
REINFORCE with a baseline, A2C and PPO (categorical and Gaussian). Start with
`run_agent(RLConfig(...), seed, run_dir, model_name)`; `play` runs an
exported policy.
"""

from tfdl.rl.config import A2CConfig, DQNConfig, EnvironmentConfig, PPOConfig, ReinforceConfig, RLConfig, parse_rl_config

__all__ = [
    "A2CConfig", "DQNConfig", "EnvironmentConfig", "PPOConfig", "ReinforceConfig", "RLConfig", "parse_rl_config",
    "run_agent", "play",
]


def __getattr__(name):
    # TensorFlow loads only when an agent is run or played, not when a config is validated.
    if name == "run_agent":
        from tfdl.rl.agent_run import run_agent

        return run_agent
    if name == "play":
        from tfdl.rl.playback import play

        return play
    raise AttributeError(f"module 'tfdl.rl' has no attribute {name!r}")
