"""The typed config of a reinforcement-learning run: environment, agent, budget.

`RLConfig` is the `rl:` section of a run config. The agent is a union
discriminated by `agent.name` (dqn | reinforce | a2c | ppo), so each agent
shows exactly its own hyperparameters and a misspelt one is an error that
names its dotted path (`rl.agent.gama: unknown field`).

Seeds: training env `i` is seeded once with `seed + i` (the run's seed) and
then runs on its own random stream through every autoreset; evaluation
episode `k` is seeded with `eval_seed + k`. `run_agent` checks that the two
ranges do not overlap, so evaluation never replays a training start state.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, ValidationError, model_validator

from tfdl.schema import ConfigError, StrictModel, describe_validation_error


class EnvironmentConfig(StrictModel):
    """Which Gymnasium environment to train on and how it is wrapped.

    Attributes:
        name: a registered Gymnasium id, e.g. CartPole-v1, Acrobot-v1, MountainCar-v0, Pendulum-v1.
        num_envs: copies stepped together as one vector environment.
        vectorization: `sync` steps the copies in this process; `async` in one subprocess each.
        normalize_observations: standardize observations with running statistics
            (frozen into the exported policy).
        scale_rewards: divide rewards by the running std of the discounted return.
        max_episode_steps: cut episodes after this many steps; None: the environment's own limit.
        clip_observations: bound of normalized observations (`|x| <= clip`).
    """

    name: str = Field("CartPole-v1", min_length=1)
    num_envs: int = Field(1, ge=1, le=256)
    vectorization: Literal["sync", "async"] = "sync"
    normalize_observations: bool = False
    scale_rewards: bool = False
    max_episode_steps: int | None = Field(None, ge=1)
    clip_observations: float = Field(10.0, gt=0.0)


class _AgentBase(StrictModel):
    """Hyperparameters shared by every agent."""

    gamma: float = Field(0.99, gt=0.0, le=1.0)
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)
    anneal_learning_rate: bool = False
    hidden_units: tuple[int, ...] = Field((64, 64), min_length=1)
    max_grad_norm: float = Field(0.5, gt=0.0)


class DQNConfig(_AgentBase):
    """Deep Q-learning (Mnih et al., 2015) with its common improvements.

    Attributes:
        buffer_size: transitions the replay buffer holds (oldest overwritten).
        batch_size: transitions per gradient step.
        learning_starts: env steps of random acting before the first update.
        train_every: env steps (vector steps x num_envs) between training rounds.
        gradient_steps: gradient steps per training round.
        prioritized: sample transitions in proportion to `|TD error|^alpha` (Schaul et al., 2016)
            and correct with importance weights whose exponent goes from beta to 1.
        alpha, beta: the prioritization and importance-weight exponents.
        target_update: `hard` copies the online network into the target every
            `target_update_every` env steps (as stable-baselines3 counts them); `soft`
            moves the target by `tau` towards the online network after every gradient step.
        double: pick the next action with the online network, value it with the target.
        dueling: Q = V + A - mean(A) head (Wang et al., 2016).
        exploration: `epsilon_greedy` (a random action with probability epsilon) or
            `boltzmann` (sample softmax(Q / temperature)).
        epsilon_start, epsilon_end, epsilon_fraction: epsilon falls linearly from start
            to end over this fraction of total_steps, then stays.
        temperature: of the Boltzmann exploration.
        loss: `huber` or `mse` on the TD error.
    """

    name: Literal["dqn"] = "dqn"
    learning_rate: float = Field(1e-4, gt=0.0, le=1.0)
    max_grad_norm: float = Field(10.0, gt=0.0)
    buffer_size: int = Field(100_000, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_starts: int = Field(1_000, ge=0)
    train_every: int = Field(4, ge=1)
    gradient_steps: int = Field(1, ge=1)
    prioritized: bool = False
    alpha: float = Field(0.6, ge=0.0, le=1.0)
    beta: float = Field(0.4, ge=0.0, le=1.0)
    target_update: Literal["hard", "soft"] = "hard"
    target_update_every: int = Field(1_000, ge=1)
    tau: float = Field(0.005, gt=0.0, le=1.0)
    double: bool = True
    dueling: bool = False
    exploration: Literal["epsilon_greedy", "boltzmann"] = "epsilon_greedy"
    epsilon_start: float = Field(1.0, ge=0.0, le=1.0)
    epsilon_end: float = Field(0.05, ge=0.0, le=1.0)
    epsilon_fraction: float = Field(0.1, gt=0.0, le=1.0)
    temperature: float = Field(1.0, gt=0.0)
    loss: Literal["huber", "mse"] = "huber"

    @model_validator(mode="after")
    def _batch_fits(self):
        if self.batch_size > self.buffer_size:
            raise ValueError(f"batch_size ({self.batch_size}) must not exceed buffer_size ({self.buffer_size})")
        return self


class _PolicyGradientBase(_AgentBase):
    """What every policy-gradient agent shares: entropy regularization and the critic."""

    entropy_coef: float = Field(0.0, ge=0.0)
    value_coef: float = Field(0.5, ge=0.0)
    log_std_init: float = Field(0.0, ge=-5.0, le=2.0)
    normalize_advantages: bool = True


class ReinforceConfig(_PolicyGradientBase):
    """REINFORCE (Williams, 1992) with a learned state-value baseline.

    Each update uses one complete episode from each of the `num_envs` copies;
    the return G_t is the Monte-Carlo discounted sum (bootstrapped only where an
    episode is truncated by a time limit).
    """

    name: Literal["reinforce"] = "reinforce"


class A2CConfig(_PolicyGradientBase):
    """Advantage actor-critic (Mnih et al., 2016, synchronous) with GAE.

    Attributes:
        n_steps: steps per env in each rollout; one gradient step per rollout.
        gae_lambda: the GAE lambda (1: Monte-Carlo advantages, 0: one-step TD).
    """

    name: Literal["a2c"] = "a2c"
    learning_rate: float = Field(7e-4, gt=0.0, le=1.0)
    n_steps: int = Field(5, ge=1)
    gae_lambda: float = Field(1.0, ge=0.0, le=1.0)


class PPOConfig(_PolicyGradientBase):
    """Proximal policy optimization (Schulman et al., 2017), clipped surrogate.

    Attributes:
        n_steps: steps per env in each rollout.
        gae_lambda: the GAE lambda.
        clip_range: epsilon of the clipped probability ratio.
        clip_range_value: clip the new value to old value +- this; None: no value clipping.
        anneal_clip_range: shrink clip_range linearly to 0 over the run.
        epochs: passes over each rollout.
        minibatches: minibatches per pass (rollout size must divide evenly).
    """

    name: Literal["ppo"] = "ppo"
    learning_rate: float = Field(3e-4, gt=0.0, le=1.0)
    n_steps: int = Field(128, ge=1)
    gae_lambda: float = Field(0.95, ge=0.0, le=1.0)
    clip_range: float = Field(0.2, gt=0.0, lt=1.0)
    clip_range_value: float | None = Field(None, gt=0.0)
    anneal_clip_range: bool = False
    epochs: int = Field(10, ge=1)
    minibatches: int = Field(4, ge=1)


AgentConfig = Annotated[Union[DQNConfig, ReinforceConfig, A2CConfig, PPOConfig], Field(discriminator="name")]


class RLConfig(StrictModel):
    """A whole reinforcement-learning run (the `rl:` section of a run config).

    Attributes:
        environment: see `EnvironmentConfig`.
        agent: one of `DQNConfig`, `ReinforceConfig`, `A2CConfig`, `PPOConfig`, picked by `name`.
        total_steps: environment steps (summed over the vector copies) to train for.
        eval_episodes: episodes of the final greedy evaluation.
        eval_seed: first seed of the evaluation episodes (episode k uses eval_seed + k);
            must not overlap the training seeds seed .. seed + num_envs - 1.
        checkpoint_every_steps: env steps between checkpoints (also one at the end).
        log_every_steps: env steps between progress lines and TensorBoard scalars.
    """

    environment: EnvironmentConfig = EnvironmentConfig()
    agent: AgentConfig = Field(default_factory=PPOConfig)
    total_steps: int = Field(100_000, ge=1)
    eval_episodes: int = Field(100, ge=1, le=10_000)
    eval_seed: int = Field(1_000_000, ge=0)
    checkpoint_every_steps: int = Field(10_000, ge=1)
    log_every_steps: int = Field(2_000, ge=1)

    @model_validator(mode="after")
    def _rollout_divides(self):
        agent = self.agent
        if isinstance(agent, PPOConfig):
            rollout = agent.n_steps * self.environment.num_envs
            if rollout % agent.minibatches:
                raise ValueError(
                    f"agent.minibatches ({agent.minibatches}) must divide the rollout "
                    f"n_steps x num_envs = {rollout}; change agent.minibatches or agent.n_steps"
                )
        return self


def parse_rl_config(tree: dict, prefix: str = "rl") -> RLConfig:
    """Validate a mapping (e.g. the `rl:` section of a YAML file) into an `RLConfig`.

    Args:
        tree: the section's contents.
        prefix: dotted path of the section, put in front of each field in errors.

    Returns:
        The validated config.

    Raises:
        ConfigError: one line per bad field, named by its dotted path (`rl.agent.gamma: ...`).
    """
    if not isinstance(tree, dict):
        raise ConfigError(f"{prefix} must be a mapping (environment, agent, total_steps, ...), got {type(tree).__name__}")
    try:
        return RLConfig(**tree)
    except ValidationError as error:
        raise ConfigError(f"invalid {prefix} config:\n{describe_validation_error(error, prefix)}") from None
