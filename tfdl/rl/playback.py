"""Runs an exported policy (a SavedModel from `run_agent`) in its environment, optionally recording a GIF.

Only the SavedModel is used, as a served model would be: raw observations in,
`action` out. Recording renders `rgb_array` frames (classic-control
environments draw with pygame) and writes them with pillow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfdl.rl.environments import env_spec, make_env
from tfdl.rl.policy_export import load_policy

_PYGAME_HINT = 'recording needs pygame to draw classic-control environments: pip install "gymnasium[classic-control]"'


def play(saved_model_dir: Path | str, env_name: str, episodes: int = 1, seed: int = 0,
         gif_path: Path | str | None = None, fps: int = 30, max_episode_steps: int | None = None) -> list[float]:
    """Play `episodes` episodes with the exported greedy policy; return their returns.

    Args:
        saved_model_dir: the version folder, e.g. `run/export/serving/cartpole/1`.
        env_name: the Gymnasium id the policy was trained on.
        episodes: how many episodes (>= 1); episode k starts from `reset(seed=seed + k)`.
        seed: seed of the first episode.
        gif_path: where to write a GIF of the first episode; None records nothing.
        fps: frames per second of the GIF.
        max_episode_steps: cut episodes after this many steps; None keeps the environment's limit.

    Returns:
        The undiscounted return of each episode.

    Raises:
        ValueError: episodes < 1, or the SavedModel is missing or does not fit the environment.
        ConfigError: unknown environment.
        RuntimeError: recording asked for and pygame is missing.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    import tensorflow as tf

    policy = load_policy(saved_model_dir)
    expected = policy.structured_input_signature[1]["observation"].shape[-1]
    env = _make(env_name, gif_path is not None, max_episode_steps)
    spec = env_spec(env)
    if expected != spec.obs_dim:
        raise ValueError(f"the policy takes observations of {expected} values and {env_name} gives {spec.obs_dim}; "
                         "pass the environment the policy was trained on")
    returns, frames = [], []
    for episode in range(episodes):
        observation, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            if gif_path is not None and episode == 0:
                frames.append(env.render())
            action = policy(observation=tf.constant(observation[None].astype(np.float32)))["action"].numpy()[0]
            if not spec.discrete:
                action = np.clip(action, spec.action_low, spec.action_high)
            observation, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    if gif_path is not None:
        _write_gif(frames, Path(gif_path), fps)
    return returns


def _make(env_name: str, record: bool, max_episode_steps: int | None):
    if not record:
        return make_env(env_name, max_episode_steps=max_episode_steps)
    try:
        import pygame  # noqa: F401 - only to fail early with the install hint
    except ImportError:
        raise RuntimeError(_PYGAME_HINT) from None
    return make_env(env_name, render_mode="rgb_array", max_episode_steps=max_episode_steps)


def _write_gif(frames: list, path: Path, fps: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
