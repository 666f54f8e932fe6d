"""`tfdl run` for a config with an `rl:` section: train an agent, evaluate, export, report.

An agent does not learn from a dataset, so it skips the data and training
stages of the other tasks: `tfdl.rl.agent_run` trains it in its
environments (resuming from the run's checkpoint when there is one),
evaluates the greedy policy on episodes whose seeds training never used,
and exports it as a SavedModel (TF Serving layout) and a `.tflite`. This
module writes what every run writes around that: `config.yaml`,
`metrics.json`, `report.md` and a sample request.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import yaml

from tfdl.evaluation.tables import markdown_table


def served_model_name(config) -> str:
    """The export's model name if the config sets one, else the run's name."""
    return config.export.model_name if "model_name" in config.export.model_fields_set else config.name


def run_reinforcement(config, run_dir: Path, log: Callable[[str], None] = print):
    """Train, evaluate, export and report the agent of `config.rl`; returns a `tfdl.run.RunResult`."""
    import numpy as np

    from tfdl.rl.agent_run import run_agent
    from tfdl.rl.environments import make_env
    from tfdl.run import RunResult, _serve_commands

    started = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    # The sections an agent's run does not use are left out, so the file loads again as a config.
    name = served_model_name(config)
    as_run = config.model_dump(mode="json", exclude={"data", "model", "training"})
    as_run["export"]["model_name"] = name
    (run_dir / "config.yaml").write_text(yaml.safe_dump(as_run, sort_keys=False))
    rl = config.rl
    log(f"[1/3] training {rl.agent.name} on {rl.environment.name} for {rl.total_steps} environment steps")
    figures = run_agent(rl, config.seed, run_dir, name, log=lambda line: log(f"      {line}"))
    log("[2/3] writing a sample request")
    env = make_env(rl.environment.name, max_episode_steps=rl.environment.max_episode_steps)
    observation, _ = env.reset(seed=rl.eval_seed)
    env.close()
    sample = run_dir / "export" / "sample_request.json"
    sample.write_text(json.dumps({"instances": [np.asarray(observation, np.float32).tolist()]}))
    serving_dir = run_dir / "export" / "serving" / name
    commands = _serve_commands(serving_dir, name, sample) + [f"tfdl rl play {run_dir} --gif {run_dir / 'episode.gif'}"]
    log("[3/3] writing the report")
    figures = {"rl": figures, "seconds": time.perf_counter() - started}
    (run_dir / "metrics.json").write_text(json.dumps(figures, indent=2))
    report = run_dir / "report.md"
    report.write_text(render_rl_report(config, figures["rl"], run_dir, commands))
    log(f"\nevaluation return {figures['rl']['eval_mean']:.1f} +- {figures['rl']['eval_std']:.1f} over "
        f"{figures['rl']['eval_episodes']} unseen episodes; {figures['seconds']:.0f} s in all")
    log(f"report: {report}\n\nServe the policy and ask it for an action:\n  " + "\n  ".join(commands))
    return RunResult(run_dir, figures, serving_dir, 1, commands)


def render_rl_report(config, figures: dict, run_dir: Path, commands: list[str]) -> str:
    """The Markdown report of an agent's run."""
    rl = config.rl
    resumed = f", resumed from step {figures['resumed_from_step']}" if figures["resumed_from_step"] else ""
    first, last = figures["eval_seeds"]
    curve = figures["curve"]
    lines = [
        f"# tfdl run `{config.name}`",
        "",
        f"Agent `{rl.agent.name}` on `{rl.environment.name}` ({rl.environment.num_envs} environments, "
        f"{rl.environment.vectorization}): {figures['env_steps']} environment steps in {figures['seconds']:.1f} s "
        f"({figures['steps_per_second']:.0f} steps/s{resumed}).",
        "",
        "## Evaluation",
        "",
        f"The greedy policy, as exported, on {figures['eval_episodes']} episodes with seeds {first}..{last}, "
        "none of which training used.",
        "",
        *markdown_table(
            ["mean return", "std", "TFLite action agreement"],
            [[f"{figures['eval_mean']:.1f}", f"{figures['eval_std']:.1f}", f"{figures['tflite_action_agreement']:.4f}"]],
        ),
        "",
        "## Learning curve",
        "",
        "![Learning curve](plots/learning_curve.png)",
        "",
        *markdown_table(["figure", "value"], [[key, value] for key, value in curve.items()
                                              if not isinstance(value, (list, dict))]),
        "",
        "## Artifacts",
        "",
        *markdown_table(["artifact", "path"], [[key, f"`{Path(path).relative_to(run_dir).as_posix()}`"]
                                               for key, path in figures["artifacts"].items()]),
        "",
        "## Serve it, play it",
        "",
        "```sh",
        *commands,
        "```",
    ]
    return "\n".join(lines) + "\n"
