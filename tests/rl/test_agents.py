"""Each agent learns CartPole past a random policy (~22) on a small budget; a full PPO run
checkpoints, resumes, exports a policy that acts like the in-process one (SavedModel and TFLite),
and plays back with a GIF."""

import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdl.rl.config import parse_rl_config
from tfdl.rl.env_runner import EnvRunner
from tfdl.rl.environments import env_spec, make_env, make_vector_env
from tfdl.rl.evaluation import evaluate_policy
from tfdl.rl.normalization import ObservationNormalizer, RewardScaler
from tfdl.rl.policy_export import ServedPolicy, load_policy
from tfdl.rl.agent_run import build_agent, check_seeds, run_agent
from http_calls import call

RANDOM_POLICY_RETURN = 22.0  # mean CartPole-v1 return of uniform random actions


def _train_and_evaluate(tree: dict, seed: int = 0) -> float:
    """Train an agent without the run's extras; mean greedy return over 10 unseen episodes."""
    config = parse_rl_config(tree)
    keras.utils.set_random_seed(seed)
    spec = env_spec(make_env("CartPole-v1"))
    agent = build_agent(config, spec, seed)
    normalizer = ObservationNormalizer(spec.obs_dim, False)
    envs = make_vector_env("CartPole-v1", config.environment.num_envs)
    runner = EnvRunner(envs, spec, normalizer, RewardScaler(envs.num_envs, 0.99, False), seed)
    while runner.steps < config.total_steps:
        agent.iterate(runner)
    runner.close()
    return float(evaluate_policy(ServedPolicy(agent, normalizer).actions, "CartPole-v1", 10, 10**6).mean())


def test_a2c_learns():
    tree = {"environment": {"num_envs": 8}, "total_steps": 6000,
            "agent": {"name": "a2c", "learning_rate": 0.003, "n_steps": 8, "gae_lambda": 0.95}}
    assert _train_and_evaluate(tree) > 4 * RANDOM_POLICY_RETURN


def test_reinforce_learns():
    tree = {"environment": {"num_envs": 4}, "total_steps": 8000,
            "agent": {"name": "reinforce", "learning_rate": 0.003}}
    assert _train_and_evaluate(tree) > 3 * RANDOM_POLICY_RETURN


def test_dqn_with_prioritized_replay_and_dueling_learns():
    tree = {"environment": {"num_envs": 1}, "total_steps": 3000,
            "agent": {"name": "dqn", "learning_rate": 0.0023, "learning_starts": 500, "train_every": 64,
                      "gradient_steps": 32, "target_update_every": 10, "epsilon_fraction": 0.3,
                      "epsilon_end": 0.04, "hidden_units": [64, 64], "prioritized": True, "dueling": True}}
    assert _train_and_evaluate(tree) > 2 * RANDOM_POLICY_RETURN


PPO = {"environment": {"num_envs": 8, "normalize_observations": True},
       "agent": {"name": "ppo", "n_steps": 32, "minibatches": 1, "epochs": 20, "gamma": 0.98, "gae_lambda": 0.8,
                 "learning_rate": 0.001},
       "total_steps": 8192, "eval_episodes": 10, "checkpoint_every_steps": 4096, "log_every_steps": 4096}


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    """The PPO config run by `tfdl run` (its rl: section), as a user runs it."""
    from tfdl.config import parse_config
    from tfdl.run import run

    run_dir = tmp_path_factory.mktemp("ppo")
    lines = []
    result = run(parse_config({"name": "cartpole", "seed": 0, "rl": PPO}), output_dir=run_dir, log=lines.append)
    return result.metrics["rl"], run_dir, lines


def test_ppo_learns_and_writes_its_artifacts(ppo_run):
    result, run_dir, _ = ppo_run
    assert result["eval_mean"] > 4 * RANDOM_POLICY_RETURN
    report = (run_dir / "report.md").read_text()
    assert f"| {result['eval_mean']:.1f} |" in report and "plots/learning_curve.png" in report
    assert "tfdl rl play" in report
    import json

    assert json.loads((run_dir / "metrics.json").read_text())["rl"]["eval_mean"] == result["eval_mean"]
    sample = json.loads((run_dir / "export" / "sample_request.json").read_text())
    served = load_policy(result["artifacts"]["saved_model"])(observation=tf.constant(sample["instances"], tf.float32))
    assert served["action"].shape == (1,)
    assert result["env_steps"] == 8192 and result["eval_episodes"] == 10
    assert (run_dir / "plots" / "learning_curve.png").stat().st_size > 1000
    assert list((run_dir / "logs").glob("events.out.tfevents.*"))
    assert result["curve"]["episodes"] > 0
    assert result["tflite_action_agreement"] == 1.0


def test_export_acts_like_the_checkpointed_policy(ppo_run):
    result, run_dir, _ = ppo_run
    config = parse_rl_config(PPO)
    spec = env_spec(make_env("CartPole-v1"))
    agent = build_agent(config, spec, seed=123)  # different init: the checkpoint must overwrite it
    normalizer = ObservationNormalizer(spec.obs_dim, True)
    checkpoint = tf.train.Checkpoint(policy_model=agent.policy.model, observation_stats=normalizer.stats)
    checkpoint.restore(tf.train.latest_checkpoint(run_dir / "checkpoints")).expect_partial()
    normalizer.stats.load()
    observations = np.random.default_rng(0).normal(scale=[1.0, 1.0, 0.1, 1.0], size=(64, 4)).astype("float32")
    logits = agent.policy.model({"observation": normalizer.normalize(observations)})["logits"].numpy()
    greedy = np.argmax(logits, axis=-1)
    served = load_policy(result["artifacts"]["saved_model"])(observation=tf.constant(observations))
    assert served["action"].dtype == tf.int64
    np.testing.assert_array_equal(served["action"].numpy(), greedy)
    np.testing.assert_allclose(served["logits"].numpy(), logits, atol=1e-5)
    from tfdl.export.parity import tflite_outputs

    lite = tflite_outputs(result["artifacts"]["tflite"], {"observation": observations})
    np.testing.assert_array_equal(lite["action"], greedy)


def test_a_second_run_resumes_from_the_saved_step(ppo_run):
    _, run_dir, _ = ppo_run
    lines = []
    longer = parse_rl_config({**PPO, "total_steps": 8192 + 512})
    result = run_agent(longer, 0, run_dir, "cartpole", log=lines.append)
    assert result["resumed_from_step"] == 8192
    assert result["env_steps"] == 8192 + 512
    assert any("resumed from" in line and "8192" in line for line in lines)


def test_play_records_a_gif_and_needs_pygame_to_record(ppo_run, tmp_path, monkeypatch):
    from tfdl.rl.playback import play

    saved = ppo_run[0]["artifacts"]["saved_model"]
    returns = play(saved, "CartPole-v1", episodes=2, seed=10**6, gif_path=tmp_path / "episode.gif",
                   max_episode_steps=25)
    assert returns == [25.0, 25.0]  # the trained policy keeps the pole up past the 25-step cut
    assert (tmp_path / "episode.gif").read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    monkeypatch.setitem(sys.modules, "pygame", None)
    with pytest.raises(RuntimeError, match=r'pip install "gymnasium\[classic-control\]"'):
        play(saved, "CartPole-v1", gif_path=tmp_path / "again.gif")
    with pytest.raises(ValueError, match="takes observations of 4 values"):
        play(saved, "Acrobot-v1")


def test_tfdl_rl_play_replays_a_run_folder(ppo_run, capsys):
    from tfdl.cli import main

    _, run_dir, _ = ppo_run
    assert main(["rl", "play", str(run_dir), "--episodes", "2", "--seed", str(10**6)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("episode 0 (seed 1000000): return") and len(lines) == 2
    assert main(["rl", "play", str(run_dir / "plots")]) == 2
    assert "--env: name the environment" in capsys.readouterr().err


def test_a_run_config_with_an_rl_section_refuses_data_model_and_training():
    from tfdl.config import parse_config
    from tfdl.schema import ConfigError

    with pytest.raises(ConfigError, match="data, model do not apply"):
        parse_config({"name": "x", "rl": {}, "model": {"name": "cnn"}, "data": {}})
    with pytest.raises(ConfigError, match=r"\nrl\.agent\.gama: unknown field"):
        parse_config({"name": "x", "rl": {"agent": {"name": "ppo", "gama": 0.9}}})


def test_evaluation_seeds_may_not_overlap_training_seeds():
    config = parse_rl_config({"environment": {"num_envs": 8}, "eval_seed": 5, "eval_episodes": 10})
    with pytest.raises(ValueError, match="rl.eval_seed: evaluation seeds 5..14 overlap the training seeds 0..7"):
        check_seeds(config, 0)
    check_seeds(config, 100)


def test_tfdl_serve_serves_the_policy_with_the_sample_request(ppo_run):
    """The exported policy behind tfdl's REST server: the run's sample request gets the greedy action."""
    import json

    from tfdl.serving.model_store import ModelStore
    from tfdl.serving.server import BackgroundServer

    result, run_dir, _ = ppo_run
    request = json.loads((run_dir / "export" / "sample_request.json").read_text())
    expected = load_policy(result["artifacts"]["saved_model"])(
        observation=tf.constant(request["instances"], tf.float32))
    store = ModelStore()
    store.add_model("cartpole", run_dir / "export" / "serving" / "cartpole")
    with BackgroundServer(store) as server:
        status, body = call(server, "POST", "/v1/models/cartpole:predict", request)
    assert status == 200, body
    (prediction,) = body["predictions"]
    assert prediction["action"] == int(expected["action"][0])
    np.testing.assert_allclose(prediction["logits"], expected["logits"][0].numpy(), atol=1e-5)
