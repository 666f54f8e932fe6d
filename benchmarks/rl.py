"""The deep-RL issue's bars, measured on this machine; figures go to a JSON file for BENCHMARKS.md.

Parts (pick with --parts; each runs in this process, one after another):

- dqn, a2c, ppo: `configs/cartpole_{agent}.yaml` trained from scratch with
  `run_agent`, then evaluated over the config's 100 episodes with unseen
  seeds. Bar: mean return >= 475 within 200k env steps and 10 minutes of
  training on 2 CPU cores.
- pendulum: `configs/pendulum_ppo.yaml`. Bar: mean return >= -300.
- sb3: env steps per second (acting plus learning) of tfdl's PPO and DQN
  against stable-baselines3 (PyTorch, CPU) with the same hyperparameters
  and step budget (the CartPole configs, `--sb3-steps` steps each), in
  the same run, reported as tfdl / sb3. stable-baselines3 is a
  benchmark-only dependency: `pip install torch stable-baselines3`.

    python benchmarks/rl.py --parts dqn,a2c,ppo,pendulum,sb3 --output benchmarks/rl_results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {"dqn": "cartpole_dqn.yaml", "a2c": "cartpole_a2c.yaml", "ppo": "cartpole_ppo.yaml",
           "pendulum": "pendulum_ppo.yaml"}
BARS = {"dqn": 475.0, "a2c": 475.0, "ppo": 475.0, "pendulum": -300.0}


def load(part: str, **overrides):
    """The `rl:` section of a shipped config and its seed, with top-level overrides."""
    from tfdl.rl.config import parse_rl_config

    tree = yaml.safe_load((ROOT / "configs" / CONFIGS[part]).read_text())
    return parse_rl_config({**tree["rl"], **overrides}), tree.get("seed", 0)


def bar_run(part: str) -> dict:
    """Train and evaluate one shipped config; the figures and whether its bar is met."""
    from tfdl.rl.agent_run import run_agent

    config, seed = load(part)
    with tempfile.TemporaryDirectory() as run_dir:
        result = run_agent(config, seed, Path(run_dir), part, log=print)
    result.pop("artifacts")
    result.pop("eval_returns", None)
    cartpole = part != "pendulum"
    met = result["eval_mean"] >= BARS[part]
    if cartpole:
        met = met and result["env_steps"] <= 200_000 and result["seconds"] <= 600
    return {**result, "bar": BARS[part], "bar_met": bool(met)}


def _sb3_ppo(config, steps: int):
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    a = config.agent
    envs = make_vec_env(config.environment.name, n_envs=config.environment.num_envs, seed=0)
    lr = (lambda p: p * a.learning_rate) if a.anneal_learning_rate else a.learning_rate
    clip = (lambda p: p * a.clip_range) if a.anneal_clip_range else a.clip_range
    batch = a.n_steps * config.environment.num_envs // a.minibatches
    return PPO("MlpPolicy", envs, n_steps=a.n_steps, batch_size=batch, n_epochs=a.epochs, gamma=a.gamma,
               gae_lambda=a.gae_lambda, learning_rate=lr, clip_range=clip, ent_coef=a.entropy_coef,
               vf_coef=a.value_coef, max_grad_norm=a.max_grad_norm, seed=0, device="cpu",
               policy_kwargs={"net_arch": list(a.hidden_units)})


def _sb3_dqn(config, steps: int):
    from stable_baselines3 import DQN

    a = config.agent
    return DQN("MlpPolicy", config.environment.name, learning_rate=a.learning_rate, buffer_size=a.buffer_size,
               learning_starts=a.learning_starts, batch_size=a.batch_size, gamma=a.gamma,
               train_freq=a.train_every, gradient_steps=a.gradient_steps,
               target_update_interval=a.target_update_every, exploration_fraction=a.epsilon_fraction,
               exploration_initial_eps=a.epsilon_start, exploration_final_eps=a.epsilon_end,
               max_grad_norm=a.max_grad_norm, seed=0, device="cpu",
               policy_kwargs={"net_arch": list(a.hidden_units)})


def throughput(steps: int) -> dict:
    """tfdl vs stable-baselines3 env steps/s for PPO and DQN, same hyperparameters and budget."""
    import torch

    from tfdl.rl.agent_run import run_agent

    torch.set_num_threads(os.cpu_count() or 1)
    figures = {}
    for part, make in (("ppo", _sb3_ppo), ("dqn", _sb3_dqn)):
        config, seed = load(part, total_steps=steps, eval_episodes=10)
        with tempfile.TemporaryDirectory() as run_dir:
            tfdl_result = run_agent(config, seed, Path(run_dir), part, log=lambda _: None)
        model = make(config, steps)
        begin = time.perf_counter()
        model.learn(total_timesteps=steps)
        sb3_seconds = time.perf_counter() - begin
        sb3_rate = steps / sb3_seconds
        figures[part] = {
            "steps": steps,
            "tfdl_steps_per_second": tfdl_result["steps_per_second"],
            "sb3_steps_per_second": sb3_rate,
            "ratio_tfdl_over_sb3": tfdl_result["steps_per_second"] / sb3_rate,
        }
        print(part, figures[part])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="dqn,a2c,ppo,pendulum,sb3")
    parser.add_argument("--sb3-steps", type=int, default=30_000)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "rl_results.json")
    args = parser.parse_args()
    results = json.loads(args.output.read_text()) if args.output.is_file() else {}
    results["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, no GPU"
    for part in args.parts.split(","):
        results[part] = throughput(args.sb3_steps) if part == "sb3" else bar_run(part)
        print(part, json.dumps(results[part], indent=1))
        args.output.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
