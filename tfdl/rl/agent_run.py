"""Trains an agent from an `RLConfig` end to end: train, checkpoint, evaluate, plot, export.

`run_agent` writes under `run_dir`:

    checkpoints/   tf.train.Checkpoint of networks, optimizer, random generators,
                   observation/reward statistics and the env-step counter, plus
                   episodes.json (the curve so far); a new run on the same
                   run_dir resumes from the latest (the replay buffer of DQN is
                   not saved: it refills during `learning_starts` steps)
    logs/          TensorBoard scalars: episode return and length, losses,
                   entropy, epsilon, learning rate
    plots/learning_curve.png
    export/serving/MODEL_NAME/1/   the greedy policy (SavedModel, TF Serving layout)
    export/MODEL_NAME.tflite       the same as float32 TFLite, checked to act the same
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from tfdl.rl.a2c import A2CAgent
from tfdl.rl.agent import Agent
from tfdl.rl.config import RLConfig
from tfdl.rl.dqn import DQNAgent
from tfdl.rl.env_runner import EnvRunner
from tfdl.rl.environments import EnvSpec, RewardShaping, env_spec, make_env, make_vector_env
from tfdl.rl.evaluation import evaluate_policy
from tfdl.rl.learning_curve import plot_learning_curve, summarize_curve
from tfdl.rl.normalization import ObservationNormalizer, RewardScaler
from tfdl.rl.policy_export import ServedPolicy, export_policy, load_policy
from tfdl.rl.ppo import PPOAgent
from tfdl.rl.reinforce import ReinforceAgent

AGENTS: dict[str, type[Agent]] = {"dqn": DQNAgent, "reinforce": ReinforceAgent, "a2c": A2CAgent, "ppo": PPOAgent}


def build_agent(config: RLConfig, spec: EnvSpec, seed: int) -> Agent:
    """The agent named by `config.agent.name`, built for the environment `spec`.

    Raises:
        ValueError: DQN asked for an environment with continuous actions.
    """
    if config.agent.name == "dqn" and not spec.discrete:
        raise ValueError(f"rl.agent.name: dqn needs discrete actions and {spec.name} has continuous ones; use ppo")
    return AGENTS[config.agent.name](config.agent, spec, config.total_steps, seed)


def check_seeds(config: RLConfig, seed: int) -> None:
    """Raise ValueError if the evaluation seeds overlap the training seeds seed .. seed + num_envs - 1."""
    train = range(seed, seed + config.environment.num_envs)
    evaluation = range(config.eval_seed, config.eval_seed + config.eval_episodes)
    if train.start < evaluation.stop and evaluation.start < train.stop:
        raise ValueError(
            f"rl.eval_seed: evaluation seeds {evaluation.start}..{evaluation.stop - 1} overlap the training seeds "
            f"{train.start}..{train.stop - 1}; pick an eval_seed at least {train.stop} or a run seed past "
            f"{evaluation.stop - 1}"
        )


def run_agent(config: RLConfig, seed: int, run_dir: Path, model_name: str, log: Callable[[str], None] = print,
              reward_shaping: RewardShaping | None = None) -> dict:
    """Train, checkpoint, evaluate, plot and export one agent (see the module docstring).

    Args:
        config: the run's `RLConfig`.
        seed: seeds the networks, the agent's draws and the training environments.
        run_dir: folder of the run's outputs; an existing checkpoint there is resumed.
        model_name: name of the model in the serving layout (what clients put in the URL).
        log: receives progress lines.
        reward_shaping: optional hook applied to training rewards (never to evaluation).

    Returns:
        Figures for metrics.json: eval_mean/eval_std/eval_returns, env_steps, steps_per_second,
        seconds, resumed_from_step, curve (see `summarize_curve`), tflite_action_agreement, artifacts.

    Raises:
        ValueError: overlapping seeds, a bad model name, or an agent that cannot act in the environment.
        ConfigError: an unknown environment.
    """
    if not model_name or "/" in model_name:
        raise ValueError(f"model_name must be a non-empty name without '/', got {model_name!r}")
    check_seeds(config, seed)
    run_dir = Path(run_dir)
    env_config = config.environment
    keras.utils.set_random_seed(seed)
    probe = make_env(env_config.name, max_episode_steps=env_config.max_episode_steps)
    spec = env_spec(probe)
    probe.close()
    agent = build_agent(config, spec, seed)
    normalizer = ObservationNormalizer(spec.obs_dim, env_config.normalize_observations, env_config.clip_observations)
    scaler = RewardScaler(env_config.num_envs, config.agent.gamma, env_config.scale_rewards)
    envs = make_vector_env(env_config.name, env_config.num_envs, vectorization=env_config.vectorization,
                           max_episode_steps=env_config.max_episode_steps, reward_shaping=reward_shaping)
    runner = EnvRunner(envs, spec, normalizer, scaler, seed)
    try:
        started = _resume(agent, normalizer, scaler, runner, run_dir, log)
        seconds = _train(config, agent, runner, run_dir, started, log)
    finally:
        runner.close()
    return _finish(config, agent, normalizer, runner, run_dir, model_name, started, seconds, log)


def _checkpoint(agent: Agent, normalizer, scaler, step: tf.Variable) -> tf.train.Checkpoint:
    return tf.train.Checkpoint(**agent.trackables(), observation_stats=normalizer.stats,
                               return_stats=scaler.stats, env_steps=step)


def _resume(agent, normalizer, scaler, runner: EnvRunner, run_dir: Path, log) -> int:
    agent.env_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="env_steps")
    agent.checkpoint_manager = tf.train.CheckpointManager(
        _checkpoint(agent, normalizer, scaler, agent.env_steps), str(run_dir / "checkpoints"), max_to_keep=3
    )
    latest = agent.checkpoint_manager.latest_checkpoint
    if latest is None:
        return 0
    agent.checkpoint_manager.checkpoint.restore(latest).assert_existing_objects_matched()
    normalizer.stats.load()
    scaler.stats.load()
    runner.steps = int(agent.env_steps.numpy())
    episodes_file = run_dir / "checkpoints" / "episodes.json"
    if episodes_file.is_file():
        runner.episodes = [tuple(e) for e in json.loads(episodes_file.read_text())
                           if e[0] <= runner.steps]
    log(f"resumed from {latest} at env step {runner.steps}")
    return runner.steps


def _save(agent, runner: EnvRunner, run_dir: Path) -> None:
    agent.env_steps.assign(runner.steps)
    runner.normalizer.stats.store()
    runner.reward_scaler.stats.store()
    agent.checkpoint_manager.save(checkpoint_number=runner.steps)
    (run_dir / "checkpoints" / "episodes.json").write_text(json.dumps(runner.episodes))


def _train(config: RLConfig, agent: Agent, runner: EnvRunner, run_dir: Path, started: int, log) -> float:
    writer = tf.summary.create_file_writer(str(run_dir / "logs"))
    logged_episodes = len(runner.episodes)
    next_log = (runner.steps // config.log_every_steps + 1) * config.log_every_steps
    next_save = (runner.steps // config.checkpoint_every_steps + 1) * config.checkpoint_every_steps
    begin = time.perf_counter()
    while runner.steps < config.total_steps:
        metrics = agent.iterate(runner)
        if runner.steps >= next_log or runner.steps >= config.total_steps:
            next_log = (runner.steps // config.log_every_steps + 1) * config.log_every_steps
            with writer.as_default():
                for env_step, episode_return, length in runner.episodes[logged_episodes:]:
                    tf.summary.scalar("episode/return", episode_return, step=env_step)
                    tf.summary.scalar("episode/length", length, step=env_step)
                for name, value in metrics.items():
                    tf.summary.scalar(f"train/{name}", value, step=runner.steps)
            logged_episodes = len(runner.episodes)
            recent = [e[1] for e in runner.episodes[-20:]]
            rate = (runner.steps - started) / max(time.perf_counter() - begin, 1e-9)
            shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
            mean_return = f"{np.mean(recent):.1f}" if recent else "n/a"
            log(f"step {runner.steps}/{config.total_steps} return(last 20)={mean_return} {rate:.0f} steps/s {shown}")
        if runner.steps >= next_save:
            next_save = (runner.steps // config.checkpoint_every_steps + 1) * config.checkpoint_every_steps
            _save(agent, runner, run_dir)
    seconds = time.perf_counter() - begin
    _save(agent, runner, run_dir)
    writer.flush()
    return seconds


def _finish(config: RLConfig, agent: Agent, normalizer, runner: EnvRunner, run_dir: Path, model_name: str,
            started: int, seconds: float, log) -> dict:
    from tfdl.export.parity import tflite_outputs
    from tfdl.export.tflite import to_tflite

    env_config = config.environment
    saved = export_policy(agent, normalizer, run_dir / "export" / "serving" / model_name / "1")
    tflite = to_tflite(saved, run_dir / "export" / f"{model_name}.tflite")
    served = load_policy(saved)

    def act(observations: np.ndarray) -> np.ndarray:
        return served(observation=tf.constant(observations))["action"].numpy()

    returns = evaluate_policy(act, env_config.name, config.eval_episodes, config.eval_seed,
                              env_config.max_episode_steps)
    probe = _probe_observations(env_config.name, config.eval_seed, env_config.max_episode_steps, act)
    in_process = ServedPolicy(agent, normalizer).actions(probe)
    lite = tflite_outputs(tflite, {"observation": probe})["action"]
    if agent.spec.discrete:
        agreement = float(np.mean(lite == in_process))
    else:
        agreement = float(np.mean(np.all(np.abs(lite - in_process) <= 1e-4, axis=-1)))
    plot = plot_learning_curve(runner.episodes, run_dir / "plots" / "learning_curve.png",
                               f"{config.agent.name} on {env_config.name}")
    trained = runner.steps - started
    result = {
        "agent": config.agent.name,
        "environment": env_config.name,
        "eval_mean": float(np.mean(returns)),
        "eval_std": float(np.std(returns)),
        "eval_returns": [float(r) for r in returns],
        "eval_episodes": len(returns),
        "eval_seeds": [config.eval_seed, config.eval_seed + config.eval_episodes - 1],
        "env_steps": runner.steps,
        "resumed_from_step": started,
        "seconds": seconds,
        "steps_per_second": trained / seconds if seconds > 0 else 0.0,
        "curve": summarize_curve(runner.episodes),
        "tflite_action_agreement": agreement,
        "artifacts": {"saved_model": str(saved), "tflite": str(tflite), "learning_curve": str(plot),
                      "logs": str(run_dir / "logs"), "checkpoints": str(run_dir / "checkpoints")},
    }
    log(f"evaluation over {len(returns)} unseen episodes: {result['eval_mean']:.1f} +- {result['eval_std']:.1f}; "
        f"TFLite agrees on {agreement:.1%} of actions")
    return result


def _probe_observations(env_name: str, seed: int, max_episode_steps, act, count: int = 256) -> np.ndarray:
    """Observations the trained policy actually visits (what the export parity is checked on)."""
    env = make_env(env_name, max_episode_steps=max_episode_steps)
    spec = env_spec(env)
    observation, _ = env.reset(seed=seed)
    seen = []
    for _ in range(count):
        seen.append(observation)
        action = act(observation[None].astype(np.float32))[0]
        if not spec.discrete:
            action = np.clip(action, spec.action_low, spec.action_high)
        observation, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            observation, _ = env.reset()
    env.close()
    return np.asarray(seen, np.float32)
