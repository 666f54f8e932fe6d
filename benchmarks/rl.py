"""The deep-RL issue's bars (issue 11), measured on this machine; figures go to BENCHMARKS.md.

Parts (pick with --parts; each runs in this process, one after another, so
their timings do not compete with each other):

- dqn, a2c, ppo: `configs/cartpole_{agent}.yaml` trained from scratch with
  `run_agent`, then its greedy policy (the exported SavedModel) evaluated
  over the config's 100 episodes with seeds training never used. Bar: mean
  return >= 475 within 200k env steps and 10 minutes of training on 2 CPU
  cores. Section `rl_cartpole` (one row per agent, re-rendered from the
  raw figures, so one agent can be re-run alone).
- pendulum: `configs/pendulum_ppo.yaml`. Bar: mean return >= -300.
  Section `rl_pendulum`.
- sb3: env steps per second (acting plus learning) of tfdl's PPO and DQN
  against stable-baselines3 (PyTorch, CPU) with the same hyperparameters
  and step budget (the CartPole configs), in the same run, reported as
  tfdl / sb3. tfdl's DQN runs without double Q-learning here, as sb3's DQN
  has none. PyTorch gets `--torch-threads` threads (default 2) and
  `OMP_WAIT_POLICY=PASSIVE` unless set (spinning OpenMP threads crawl on
  cores shared with other jobs); TensorFlow keeps its default thread
  pools. stable-baselines3 is a
  benchmark-only dependency: `pip install torch stable-baselines3`.
  Section `rl_sb3`.

Raw figures accumulate in `runs/rl_benchmark.json` (not committed).

    python benchmarks/rl.py [--parts dqn,a2c,ppo,pendulum,sb3] [--output BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from tfdl.rl.config import RLConfig

# OpenMP threads (PyTorch's) spin while they wait; on 2 cores shared with other jobs that made
# sb3's PPO 10x slower with 2 threads than with 1 (43 against 480 steps/s). The OpenMP runtime
# reads this once, when the first library that uses it loads, so it is set before any import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from spine import machine, write_section  # noqa: E402

CONFIGS = {"dqn": "cartpole_dqn.yaml", "a2c": "cartpole_a2c.yaml", "ppo": "cartpole_ppo.yaml",
           "pendulum": "pendulum_ppo.yaml"}
BARS = {"dqn": 475.0, "a2c": 475.0, "ppo": 475.0, "pendulum": -300.0}
CARTPOLE_MAX_STEPS = 200_000
CARTPOLE_MAX_SECONDS = 600.0
PARTS = ("dqn", "a2c", "ppo", "pendulum", "sb3")


def load(part: str, **overrides) -> tuple[RLConfig, int]:
    """The `rl:` section of a shipped config (with top-level and `agent` overrides) and its seed.

    Args:
        part: dqn, a2c, ppo or pendulum (which config).
        **overrides: top-level `rl:` fields to replace; `agent={...}` replaces agent fields.

    Returns:
        The validated config and the run's seed.

    Raises:
        ConfigError: an override makes the config invalid.
    """
    from tfdl.rl.config import parse_rl_config

    tree = yaml.safe_load((ROOT / "configs" / CONFIGS[part]).read_text())
    rl = dict(tree["rl"])
    rl["agent"] = {**rl["agent"], **overrides.pop("agent", {})}
    return parse_rl_config({**rl, **overrides}), tree.get("seed", 0)


def _load_average() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def bar_run(part: str) -> dict:
    """Train and evaluate one shipped config; the figures and whether its bar is met."""
    from tfdl.rl.agent_run import run_agent

    config, seed = load(part)
    load_before = _load_average()
    with tempfile.TemporaryDirectory() as run_dir:
        result = run_agent(config, seed, Path(run_dir), part, log=print)
    result.pop("artifacts")
    met = result["eval_mean"] >= BARS[part]
    if part != "pendulum":
        met = met and result["env_steps"] <= CARTPOLE_MAX_STEPS and result["seconds"] <= CARTPOLE_MAX_SECONDS
    return {**result, "config": f"configs/{CONFIGS[part]}", "bar": BARS[part], "bar_met": bool(met),
            "load_average": f"{load_before} before, {_load_average()} after"}


def _sb3_ppo(config):
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    a = config.agent
    envs = make_vec_env(config.environment.name, n_envs=config.environment.num_envs, seed=0)
    # sb3 schedules take the remaining progress (1 -> 0), which is tfdl's linear annealing.
    lr = (lambda p: p * a.learning_rate) if a.anneal_learning_rate else a.learning_rate
    clip = (lambda p: p * a.clip_range) if a.anneal_clip_range else a.clip_range
    batch = a.n_steps * config.environment.num_envs // a.minibatches
    return PPO("MlpPolicy", envs, n_steps=a.n_steps, batch_size=batch, n_epochs=a.epochs, gamma=a.gamma,
               gae_lambda=a.gae_lambda, learning_rate=lr, clip_range=clip, ent_coef=a.entropy_coef,
               vf_coef=a.value_coef, max_grad_norm=a.max_grad_norm, normalize_advantage=a.normalize_advantages,
               seed=0, device="cpu", policy_kwargs={"net_arch": list(a.hidden_units)})


def _sb3_dqn(config):
    from stable_baselines3 import DQN

    a = config.agent
    return DQN("MlpPolicy", config.environment.name, learning_rate=a.learning_rate, buffer_size=a.buffer_size,
               learning_starts=a.learning_starts, batch_size=a.batch_size, gamma=a.gamma,
               train_freq=a.train_every, gradient_steps=a.gradient_steps,
               target_update_interval=a.target_update_every, exploration_fraction=a.epsilon_fraction,
               exploration_initial_eps=a.epsilon_start, exploration_final_eps=a.epsilon_end,
               max_grad_norm=a.max_grad_norm, seed=0, device="cpu",
               policy_kwargs={"net_arch": list(a.hidden_units)})


def throughput(steps: int | None, torch_threads: int, eval_episodes: int) -> dict:
    """tfdl vs stable-baselines3 env steps/s for PPO and DQN, same hyperparameters and budget, one after the other."""
    import numpy as np
    import torch

    from tfdl.rl.agent_run import run_agent
    from tfdl.rl.evaluation import evaluate_policy

    torch.set_num_threads(torch_threads)
    figures = {"torch_threads": torch_threads, "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
               "eval_episodes": eval_episodes, "load_average_before": _load_average()}
    for part, make in (("ppo", _sb3_ppo), ("dqn", _sb3_dqn)):
        overrides = {"eval_episodes": eval_episodes}
        if steps is not None:
            overrides["total_steps"] = steps
        if part == "dqn":
            overrides["agent"] = {"double": False}
        config, seed = load(part, **overrides)
        with tempfile.TemporaryDirectory() as run_dir:
            ours = run_agent(config, seed, Path(run_dir), part, log=lambda _: None)
        model = make(config)
        begin = time.perf_counter()
        model.learn(total_timesteps=config.total_steps)
        sb3_seconds = time.perf_counter() - begin
        sb3_returns = evaluate_policy(lambda obs: model.predict(obs, deterministic=True)[0], config.environment.name,
                                      eval_episodes, config.eval_seed)
        sb3_rate = config.total_steps / sb3_seconds
        figures[part] = {
            "steps": config.total_steps,
            "tfdl_steps_per_second": ours["steps_per_second"],
            "tfdl_seconds": ours["seconds"],
            "tfdl_eval_mean": ours["eval_mean"],
            "sb3_steps_per_second": sb3_rate,
            "sb3_seconds": sb3_seconds,
            "sb3_eval_mean": float(np.mean(sb3_returns)),
            "ratio_tfdl_over_sb3": ours["steps_per_second"] / sb3_rate,
        }
        print(part, figures[part], flush=True)
    figures["load_average_after"] = _load_average()
    return figures


def _yes(met: bool) -> str:
    return "yes" if met else "NO"


def cartpole_section(results: dict) -> list[str]:
    """Markdown of the CartPole bars, one row per agent measured so far."""
    lines = [
        "## Deep RL: CartPole-v1 with DQN, A2C and PPO",
        "",
        f"Bar: mean return >= 475 over 100 evaluation episodes (seeds 1000000..1000099, never used in "
        f"training; greedy policy of the exported SavedModel) within {CARTPOLE_MAX_STEPS:,} env steps and "
        f"{CARTPOLE_MAX_SECONDS / 60:.0f} minutes of training on 2 CPU cores.",
        "",
        "| agent | config | env steps | training time | steps/s | eval mean +- std (min) | met | measured "
        "| load average |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for part in ("dqn", "a2c", "ppo"):
        if part not in results:
            lines.append(f"| {part} | `configs/{CONFIGS[part]}` | not measured | | | | | | |")
            continue
        r = results[part]
        lines.append(
            f"| {part} | `{r['config']}` | {r['env_steps']:,} | {r['seconds']:.0f} s | {r['steps_per_second']:.0f} | "
            f"{r['eval_mean']:.1f} +- {r['eval_std']:.1f} ({min(r['eval_returns']):.0f}) | {_yes(r['bar_met'])} | "
            f"{r['measured']} | {r['load_average']} |")
    lines += ["", *_provenance(results, ("dqn", "a2c", "ppo"))]
    return lines


def pendulum_section(results: dict) -> list[str]:
    """Markdown of the Pendulum bar."""
    r = results["pendulum"]
    return [
        "## Deep RL: Pendulum-v1 with PPO (continuous actions)",
        "",
        "| bar | target | measured | met |",
        "|---|---|---|---|",
        f"| mean return over {r['eval_episodes']} unseen episodes | >= {BARS['pendulum']:.0f} | "
        f"{r['eval_mean']:.1f} +- {r['eval_std']:.1f} (worst {min(r['eval_returns']):.0f}) | {_yes(r['bar_met'])} |",
        "",
        f"`{r['config']}`: {r['env_steps']:,} env steps in {r['seconds']:.0f} s of training "
        f"({r['steps_per_second']:.0f} steps/s); measured {r['measured']}, load average {r['load_average']}.",
        "",
        *_provenance(results, ("pendulum",)),
    ]


def sb3_section(results: dict) -> list[str]:
    """Markdown of the tfdl / stable-baselines3 throughput comparison."""
    r = results["sb3"]
    lines = [
        "## Deep RL: env steps per second, tfdl vs stable-baselines3",
        "",
        "Acting plus learning, the whole training loop of each library on the same CartPole config "
        "(same hyperparameters and step budget), measured one after the other in the same process. "
        f"PyTorch {r['torch_version']} on CPU with `torch.set_num_threads({r['torch_threads']})` and "
        f"`OMP_WAIT_POLICY={r['omp_wait_policy']}`; TensorFlow with its default thread pools; "
        f"stable-baselines3 {r['sb3_version']}. tfdl's DQN runs without double Q-learning here, as sb3's DQN "
        f"has none. Eval means: each library's final greedy policy of its one run (seed 0), "
        f"{r['eval_episodes']} episodes with unseen seeds; a sign that learning happened, not a comparison "
        "of learning across seeds.",
        "",
        "| agent | env steps | tfdl steps/s | sb3 steps/s | tfdl / sb3 | tfdl eval mean | sb3 eval mean |",
        "|---|---|---|---|---|---|---|",
    ]
    for part in ("ppo", "dqn"):
        f = r[part]
        lines.append(f"| {part} | {f['steps']:,} | {f['tfdl_steps_per_second']:.0f} | "
                     f"{f['sb3_steps_per_second']:.0f} | {f['ratio_tfdl_over_sb3']:.2f}x | "
                     f"{f['tfdl_eval_mean']:.1f} | {f['sb3_eval_mean']:.1f} |")
    lines += ["", f"Load average {r['load_average_before']} before, {r['load_average_after']} after.", "",
              *_provenance(results, ("sb3",))]
    return lines


def _provenance(results: dict, parts) -> list[str]:
    commands = sorted({results[p]["command"] for p in parts if p in results})
    machines = sorted({results[p]["machine"] for p in parts if p in results})
    return [f"Machine: {'; '.join(machines)}.", "Command: " + ", ".join(f"`{c}`" for c in commands) + "."]


SECTIONS = {"rl_cartpole": (("dqn", "a2c", "ppo"), cartpole_section), "rl_pendulum": (("pendulum",), pendulum_section),
            "rl_sb3": (("sb3",), sb3_section)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--sb3-steps", type=int, default=None,
                        help="env steps of each throughput run (default: the config's total_steps)")
    parser.add_argument("--sb3-eval-episodes", type=int, default=20)
    parser.add_argument("--torch-threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--raw", type=Path, default=ROOT / "runs" / "rl_benchmark.json")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite the sections of the parts from the raw figures, measuring nothing")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {', '.join(PARTS)}")
    results = json.loads(args.raw.read_text()) if args.raw.is_file() else {}
    command = "python benchmarks/rl.py --parts " + ",".join(parts)
    where = machine()
    if args.render_only:
        _write_sections(args.output, results, [p for p in parts if p in results])
        return
    for part in parts:
        if part == "sb3":
            import stable_baselines3
            import torch

            figures = throughput(args.sb3_steps, args.torch_threads, args.sb3_eval_episodes)
            figures.update(torch_version=torch.__version__, sb3_version=stable_baselines3.__version__)
        else:
            figures = bar_run(part)
        results[part] = {**figures, "measured": time.strftime("%Y-%m-%d %H:%M"), "machine": where,
                         "command": command}
        args.raw.parent.mkdir(parents=True, exist_ok=True)
        args.raw.write_text(json.dumps(results, indent=1))
        _write_sections(args.output, results, [part])


def _write_sections(output: Path, results: dict, parts: list[str]) -> None:
    """Rewrite (in `output`) every section that shows one of `parts`, from the raw figures."""
    for title, (members, render) in SECTIONS.items():
        if any(part in members for part in parts):
            text = "\n".join(render(results))
            write_section(output, title, text)
            print(text, flush=True)


if __name__ == "__main__":
    main()
