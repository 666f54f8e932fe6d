"""Atlas entries 91-100: deep reinforcement learning, rewards, Q-learning, replay, policy gradients, PPO.

The examples run on problems small enough to solve exactly (corridors,
bandits, CliffWalking), so each learned quantity can be set beside the true
one; the shipped configs (`cartpole_dqn`, `cartpole_a2c`, `cartpole_ppo`,
`pendulum_ppo`) run the same agents at full size with `tfdl run`.
"""

from __future__ import annotations

from tfdl.atlas.entry import atlas_entry
from tfdl.atlas.lesson import Lesson


def _fitted_q(observations, actions, rewards, next_observations, terminated, *, num_actions: int, gamma: float,
              steps: int, seed: int, hidden_units=(32, 32), learning_rate: float = 3e-3, tau: float = 0.02):
    """DQN's update on a fixed batch of transitions: regress Q(s, a) on r + gamma (1 - done) max Q_target(s', .).

    tfdl's own Q-network and TD target (`tfdl.rl.networks`, `tfdl.rl.dqn`); the
    target network follows the online one by Polyak averaging (rate `tau`).
    All `steps` full-batch Adam steps run as one compiled loop. Returns the
    trained Q-network.
    """
    import keras
    import tensorflow as tf

    from tfdl.rl import build_q_network, dqn_targets

    keras.utils.set_random_seed(seed)
    dim = observations.shape[1]
    online = build_q_network(dim, num_actions, hidden_units)
    target = build_q_network(dim, num_actions, hidden_units, name="target_q_network")
    target.set_weights(online.get_weights())
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(online.trainable_variables)
    s, a, r, s2, done = (tf.constant(v, dtype) for v, dtype in ((observations, tf.float32), (actions, tf.int32),
                                                               (rewards, tf.float32), (next_observations, tf.float32),
                                                               (terminated, tf.float32)))

    @tf.function
    def train():
        for _ in tf.range(steps):
            next_target = target({"observation": s2})["q_values"]
            y = dqn_targets(r, done, next_target, next_target, gamma, double=False)
            with tf.GradientTape() as tape:
                q = tf.gather(online({"observation": s})["q_values"], a, axis=1, batch_dims=1)
                loss = tf.reduce_mean(tf.square(q - y))
            optimizer.apply_gradients(zip(tape.gradient(loss, online.trainable_variables),
                                          online.trainable_variables))
            for t_var, o_var in zip(target.variables, online.variables):
                t_var.assign(tau * o_var + (1.0 - tau) * t_var)

    train()
    return online


def _corridor_step(states, actions, size: int):
    """The corridor 0 .. size-1: action 1 moves right, 0 left (a wall at 0); reaching size-1 pays 1 and ends."""
    import numpy as np

    nxt = np.clip(states + np.where(actions == 1, 1, -1), 0, size - 1)
    done = nxt == size - 1
    return nxt, done.astype("float32"), done.astype("float32")


@atlas_entry(
    91,
    formula=r"Q_\theta(s, a) \approx Q^*(s, a) = \mathbb E\big[r + \gamma \max_{a'} Q^*(s', a') \mid s, a\big],"
    r"\qquad \pi(s) = \arg\max_a Q_\theta(s, a)",
    see=("tfdl.rl.RLConfig", "tfdl.rl.DQNConfig", "tfdl.rl.PPOConfig", "tfdl.rl.run_agent", "tfdl.rl.play",
         "tfdl.rl.build_q_network", "tfdl.rl.dqn_targets"),
    configs=("cartpole_dqn", "cartpole_ppo"),
)
def deep_reinforcement_learning(lesson: Lesson) -> None:
    """**Reinforcement learning** (RL) is learning to act: an agent observes a state $s$, picks an
    action $a$, and the environment answers with a reward $r$ and the next state $s'$. Nobody
    labels the right action; the agent must find the behaviour (the **policy** $\\pi$) that
    maximizes the expected discounted return $\\sum_t \\gamma^t r_t$, including rewards that
    come many steps after the action that earned them.

    **Deep** RL represents the policy, the value function $V(s)$, or the action values
    $Q(s, a)$ with a neural network trained by gradient descent, so the agent works on
    large or continuous observations (joint angles, pixels) where no table could list every
    state. The RL algorithm turns experience into training targets (here the Bellman target
    $r + \\gamma \\max_{a'} Q(s', a')$; in policy-gradient methods a return-weighted
    log-probability), and the network generalizes them to states it has never seen. tfdl's
    agents (DQN, REINFORCE, A2C, PPO) train such networks on Gymnasium environments.

    The example is a continuous corridor: the state is a position $x \\in [0, 1]$, the actions
    step left or right by 0.1 (plus noise), and reaching $x \\ge 1$ pays 1. A small Q-network
    learns from 600 random transitions (3000 at the full budget), as DQN does from its replay buffer, with tfdl's
    Q-network and TD target. Its greedy policy then walks to the goal from start positions it
    never saw, in the fewest steps, and $\\max_a Q(x, a)$ follows the true value
    $\\gamma^{k(x) - 1}$, $k(x)$ the steps still needed.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    rng = np.random.default_rng(lesson.seed)
    gamma, stride, noise = 0.9, 0.1, 0.02

    def step(x, action):  # the environment: move, clip at the left wall, pay 1 on reaching the goal
        x_next = np.clip(x + np.where(action == 1, stride, -stride) + rng.normal(0, noise, x.shape), 0.0, 1.0)
        done = x_next >= 1.0
        return x_next, done.astype("float32"), done.astype("float32")

    # Experience from a random policy, as in DQN's buffer before learning starts.
    x = rng.uniform(0.0, 1.0, lesson.budget(600, 3000)).astype("float32")
    a = rng.integers(0, 2, x.shape)
    x_next, r, done = step(x, a)
    q_network = _fitted_q(x[:, None], a, r, x_next[:, None].astype("float32"), done, num_actions=2, gamma=gamma,
                          steps=lesson.budget(1200, 4000), seed=lesson.seed)

    # The greedy policy from 100 fresh start positions.
    starts = rng.uniform(0.0, 0.95, 100).astype("float32")
    position, steps_taken, arrived = starts.copy(), np.zeros(100), np.zeros(100, bool)
    for _ in range(40):
        action = q_network({"observation": position[:, None]})["q_values"].numpy().argmax(-1)
        moved, _, done = step(position, action)
        position = np.where(arrived, position, moved).astype("float32")
        steps_taken += ~arrived
        arrived |= done.astype(bool)
    fewest = np.ceil((1.0 - starts) / stride)  # steps needed without noise
    success = lesson.number("greedy policy: share of starts reaching the goal", float(arrived.mean()))
    extra = lesson.number("greedy policy: mean steps beyond the noise-free minimum",
                          float(np.mean(steps_taken[arrived] - fewest[arrived])))

    grid = np.linspace(0.0, 0.99, 200, dtype="float32")
    q = q_network({"observation": grid[:, None]})["q_values"].numpy()
    true_value = gamma ** (np.ceil((1.0 - grid) / stride) - 1)
    error = lesson.number("mean |max_a Q(x, a) - true value|", float(np.mean(np.abs(q.max(-1) - true_value))))

    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(grid, q[:, 1], label="Q(x, right), learned")
    ax.plot(grid, q[:, 0], label="Q(x, left), learned")
    ax.step(grid, true_value, "k--", where="mid", lw=1, label=r"true value $\gamma^{k(x)-1}$")
    ax.set_xlabel("position x (goal at 1)")
    ax.set_ylabel("action value")
    ax.set_title(f"Q-network from {len(x)} random transitions: its greedy policy reaches the goal from "
                 f"{success:.0%} of new starts", fontsize=9)
    ax.legend(fontsize=8)
    lesson.figure(fig, "corridor_q", "The Q-network's action values over the continuous corridor against the "
                  "true optimal value: 'right' is valued higher everywhere, and its value follows the staircase.")
    lesson.check("the greedy policy of the learned Q-network reaches the goal from >= 98% of unseen starts",
                 success >= 0.98, f"{success:.2f}")
    lesson.check("it takes on average at most 1 step more than the noise-free minimum", extra <= 1.0, f"{extra:.2f}")
    lesson.check("max_a Q(x, a) is within 0.1 of the true value on average", error <= 0.1, f"{error:.3f}")


def _tabular_q_learning(transitions, num_states: int, num_actions: int, gamma: float, sweeps: int,
                        alpha: float = 0.5):
    """Q-learning over a fixed list of (s, a, r, s', done) transitions, `sweeps` passes in order; returns the table."""
    import numpy as np

    q = np.zeros((num_states, num_actions))
    for _ in range(sweeps):
        for s, a, r, s2, done in transitions:
            q[s, a] += alpha * (r + gamma * (1.0 - done) * q[s2].max() - q[s, a])
    return q


@atlas_entry(
    92,
    formula=r"\text{tabular: } Q(s, a) \leftarrow Q(s, a) + \alpha\big(r + \gamma \max_{a'} Q(s', a') - Q(s, a)\big)"
    r"\ \text{(one entry changes)};\qquad "
    r"\text{deep: } \theta \leftarrow \theta - \alpha \nabla_\theta \tfrac12\big(Q_\theta(s, a) - y\big)^2\ "
    r"\text{(every state's value changes)}",
    see=("tfdl.rl.DQNConfig", "tfdl.rl.run_agent", "tfdl.rl.build_q_network", "tfdl.rl.dqn_targets"),
    configs=("cartpole_dqn",),
)
def deep_vs_tabular_rl(lesson: Lesson) -> None:
    """Traditional RL methods (tabular Q-learning, SARSA, value and policy iteration) keep
    **one number per state** (or state-action pair) in a table. They come with convergence
    guarantees and need no gradient descent, but a table only works when the states can be
    listed, and every state must be visited, many times, for its entry to be learned: an
    update to $Q(s, a)$ says nothing about any other state. With continuous or
    high-dimensional observations (a robot's joint angles, an Atari screen) states never
    repeat, and the table is useless. Classic RL with hand-made features and a linear
    function approximator eases this, at the cost of feature engineering.

    **Deep** RL replaces the table with a neural network $Q_\\theta(s, a)$ or $\\pi_\\theta(a \\mid s)$
    over the raw observation. Its parameters are shared by all states, so one update moves
    the estimates of similar states too: the agent **generalizes** to states it has never
    visited, and the memory no longer grows with the number of states. The price: the
    targets move while the network learns, consecutive samples are correlated, and the
    convergence guarantees of the tabular case are lost, so deep agents need experience
    replay, target networks, clipping and more samples (questions 95 and 100).

    The example is a 20-state corridor (reward 1 at the right end, $\\gamma = 0.9$). Both
    learners get the same transitions, which start from only 40% of the states (the one
    beside the goal among them, so that a reward is seen at all). Tabular
    Q-learning learns nothing for the states it never saw, and its values stop at the first
    gap; the Q-network, reading the position as a number, fills the gaps and prefers "right"
    everywhere. Given every state, the table solves the corridor exactly.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    size, gamma = 20, 0.9
    rng = np.random.default_rng(lesson.seed)
    states = np.arange(size - 1)  # the last state is the goal
    true_right = gamma ** (size - 2 - states)  # Q*(s, right): the goal is size-1-s steps away

    def transitions_from(starts):  # both actions from each start state
        s = np.repeat(starts, 2)
        a = np.tile([0, 1], len(starts))
        s2, r, done = _corridor_step(s, a, size)
        return s, a, r, s2, done

    # 40% of the states, the one beside the goal always among them (else no learner ever sees a reward).
    seen = np.sort(np.append(rng.choice(states[:-1], int(0.4 * len(states)) - 1, replace=False), size - 2))
    s, a, r, s2, done = transitions_from(seen)
    sweeps = lesson.budget(60, 200)
    table = _tabular_q_learning(list(zip(s, a, r, s2, done)), size, 2, gamma, sweeps)
    full_table = _tabular_q_learning(list(zip(*transitions_from(states))), size, 2, gamma, sweeps)
    position = (lambda states_: (states_ / (size - 1)).astype("float32")[:, None])
    q_network = _fitted_q(position(s), a, r, position(s2), done, num_actions=2, gamma=gamma,
                          steps=lesson.budget(1000, 4000), seed=lesson.seed)
    network = q_network({"observation": position(states)})["q_values"].numpy()

    def prefers_right(q):  # share of states whose greedy action is the optimal one, strictly
        return float(np.mean(q[states, 1] > q[states, 0]))

    unseen = np.setdiff1d(states, seen)
    rows = [("table, 40% of states seen", prefers_right(table), float(np.mean(table[unseen, 1] > table[unseen, 0]))),
            ("Q-network, same transitions", prefers_right(network),
             float(np.mean(network[unseen, 1] > network[unseen, 0]))),
            ("table, every state seen", prefers_right(full_table), float("nan"))]
    lesson.table("States whose greedy action is 'right' (the optimal one)",
                 ("learner", "all states", "unseen states"), rows)
    for name, everywhere, in_unseen in rows:
        lesson.number(f"{name}: share of states choosing right", everywhere)
    lesson.number("table entries (states x actions)", size * 2)
    lesson.number("Q-network parameters", q_network.count_params())

    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for state in unseen:
        ax.axvspan(state - 0.5, state + 0.5, color="0.9", lw=0)
    ax.plot(states, true_right, "k--", lw=1, label="true Q*(s, right)")
    ax.plot(states, table[states, 1], "o-", ms=4, label="table, 40% of states seen")
    ax.plot(states, network[:, 1], "s-", ms=4, label="Q-network, same transitions")
    ax.set_xlabel("state (grey: never visited)")
    ax.set_ylabel("Q(s, right)")
    ax.set_title("Same experience: the table knows only what it visited; the network generalizes", fontsize=9)
    ax.legend(fontsize=8)
    lesson.figure(fig, "table_vs_network", "Q(s, right) along the corridor, learned from transitions out of the white "
                  "states only: the table's values stop at the first unvisited state, the network's fill the gaps.")
    table_share, network_share, full_share = rows[0][1], rows[1][1], rows[2][1]
    lesson.check("with every state visited, tabular Q-learning picks the optimal action everywhere",
                 full_share == 1.0 and np.allclose(full_table[states, 1], true_right, atol=1e-3), f"{full_share:.2f}")
    lesson.check("from 40% of the states, the table prefers the optimal action in at most 40% of them",
                 table_share <= 0.4 + 1e-9, f"{table_share:.2f}")
    lesson.check("the Q-network, from the same transitions, prefers it in >= 95% of all states, unseen ones included",
                 network_share >= 0.95, f"{network_share:.2f}")


@atlas_entry(
    93,
    formula=r"G_t = \sum_{k \ge 0} \gamma^k r_{t+k+1},\qquad \pi^* = \arg\max_\pi \mathbb E_\pi[G_0];\qquad "
    r"\text{potential-based shaping } r' = r + \gamma \Phi(s') - \Phi(s) \text{ keeps } \pi^*",
    see=("tfdl.rl.run_agent", "tfdl.rl.EnvironmentConfig"),
    configs=("cartpole_ppo",),
)
def reward_functions(lesson: Lesson) -> None:
    """The reward function is the only statement of the task the agent ever receives: it
    maximizes the expected discounted sum of rewards and nothing else. Designing it is
    therefore designing the goal. Two properties decide how well that goes. **Density**: a
    **sparse** reward (1 at the goal, 0 elsewhere) says exactly what is wanted but gives no
    signal until random exploration stumbles on the goal, which can take exponentially long;
    a **dense** reward (progress, distance) guides every step. **Faithfulness**: a dense
    reward written by hand easily pays for something other than the task, and the agent
    will exploit the difference (*reward hacking*).

    **Potential-based shaping** adds $\\gamma \\Phi(s') - \\Phi(s)$ for some function $\\Phi$ of
    the state (say, minus the distance to the goal). Along any trajectory these terms
    telescope to $\\gamma^T \\Phi(s_T) - \\Phi(s_0)$, so they cannot change which policy is
    best (Ng et al., 1999), yet they reward every step of progress at once. tfdl's
    `run_agent` takes such a shaping hook (`reward_shaping`), applied to training rewards
    only, never to evaluation.

    The example trains tabular Q-learning ($\\epsilon$-greedy, $\\epsilon = 0.1$) on a 20-step
    corridor with three rewards: sparse (1 at the goal), shaped (the same plus potential
    progress), and a naive "+0.1 for every step to the right". Shaping reaches the optimal
    policy about a hundred times sooner than the sparse reward; the naive reward teaches the
    agent to step back and forth for ever, collecting 0.1 per round trip, and never finish.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    length, gamma, epsilon, alpha, cap = 20, 0.99, 0.1, 0.5, 400
    episodes, runs = lesson.budget(60, 150), lesson.budget(4, 10)

    rewards = {  # (s, s') -> reward; the goal is state `length`, reached from length - 1
        "sparse: 1 at the goal": lambda s, s2: float(s2 == length),
        "shaped: + 0.99 Φ(s') - Φ(s), Φ = s / 20":
            lambda s, s2: float(s2 == length) + gamma * s2 / length - s / length,
        "naive: + 0.1 per step right": lambda s, s2: float(s2 == length) + 0.1 * (s2 > s),
    }

    def greedy_steps(q):  # steps the greedy policy needs from the start (cap: it never arrives)
        s = 0
        for t in range(1, 2 * length + 1):
            s = max(s + (1 if q[s, 1] > q[s, 0] else -1), 0)
            if s == length:
                return t
        return cap

    def train(reward, rng):
        q = np.zeros((length + 1, 2))
        spent, learned_at = 0, None
        for _ in range(episodes):
            s = 0
            for _ in range(cap):
                explore = rng.random() < epsilon or q[s, 0] == q[s, 1]
                a = rng.integers(2) if explore else int(q[s, 1] > q[s, 0])
                s2 = max(s + (1 if a == 1 else -1), 0)
                done = s2 == length
                q[s, a] += alpha * (reward(s, s2) + gamma * (not done) * q[s2].max() - q[s, a])
                s, spent = s2, spent + 1
                if done:
                    break
            if learned_at is None and greedy_steps(q) == length:
                learned_at = spent
        return learned_at, greedy_steps(q)

    rng = np.random.default_rng(lesson.seed)
    results = {name: [train(reward, rng) for _ in range(runs)] for name, reward in rewards.items()}
    rows, steps_to_learn = [], {}
    for name, outcome in results.items():
        learned = [at for at, _ in outcome if at is not None]
        steps_to_learn[name] = float(np.mean(learned)) if len(learned) == runs else float("inf")
        final = float(np.mean([steps for _, steps in outcome]))
        rows.append((name, f"{len(learned)} / {runs}", steps_to_learn[name], final))
        lesson.number(f"{name}: env steps until the greedy policy is optimal", steps_to_learn[name])
        lesson.number(f"{name}: greedy steps to the goal after training", final)
    lesson.table(f"Tabular Q-learning, {episodes} episodes per run", ("reward", "runs reaching the optimal policy",
                 "env steps until optimal (mean)", "greedy steps to the goal at the end (cap 400)"), rows)

    sparse, shaped, naive = (steps_to_learn[name] for name in rewards)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    names = [name.split(":")[0] for name in rewards]
    ax.barh(names, [min(v, 10 * sparse) for v in steps_to_learn.values()], color=["tab:blue", "tab:green", "tab:red"])
    for row, value in enumerate(steps_to_learn.values()):
        ax.text(min(value, 10 * sparse), row, f"  {value:.0f}" if np.isfinite(value) else "  never", va="center")
    ax.set_xscale("log")
    ax.set_xlim(10, 100 * sparse)
    ax.set_xlabel("environment steps until the greedy policy walks straight to the goal (log scale)")
    ax.set_title("Same task, three reward functions (tabular Q-learning, 20-step corridor)", fontsize=9)
    lesson.figure(fig, "steps_to_learn", "Sample cost of learning the optimal policy under a sparse, a potential-"
                  "shaped and a naive progress reward; the naive one is never learned (the agent loops).")
    lesson.check("under the sparse reward the agent does learn the optimal policy in every run", np.isfinite(sparse),
                 f"{sparse:.0f} steps")
    lesson.check("potential-based shaping learns the same optimal policy with a tenth of the sparse reward's steps",
                 shaped <= sparse / 10, f"{shaped:.0f} vs {sparse:.0f}")
    lesson.check("the naive +0.1-per-step-right reward is hacked: the greedy agent never reaches the goal",
                 all(steps == cap for _, steps in results["naive: + 0.1 per step right"]),
                 f"greedy steps {[steps for _, steps in results['naive: + 0.1 per step right']]}")


@atlas_entry(
    94,
    formula=r"Q(s, a) \leftarrow Q(s, a) + \alpha \Big(r + \gamma\, (1 - \text{done}) \max_{a'} Q(s', a')"
    r" - Q(s, a)\Big)\ \xrightarrow{\ \text{every } (s, a) \text{ visited often},\ \sum \alpha = \infty,\ "
    r"\sum \alpha^2 < \infty\ }\ Q^*,"
    r"\qquad Q^*(s, a) = \mathbb E\big[r + \gamma \max_{a'} Q^*(s', a')\big]",
    see=("tfdl.rl.DQNConfig", "tfdl.rl.run_agent", "tfdl.rl.dqn_targets"),
    configs=("cartpole_dqn",),
)
def q_learning(lesson: Lesson) -> None:
    """**Q-learning** (Watkins, 1989) learns the optimal action-value function $Q^*(s, a)$: the
    expected return of taking action $a$ in state $s$ and acting optimally afterwards. $Q^*$ is
    the fixed point of the **Bellman optimality equation**, so after each transition
    $(s, a, r, s')$ Q-learning moves $Q(s, a)$ a step $\\alpha$ towards the **TD target**
    $r + \\gamma \\max_{a'} Q(s', a')$ (just $r$ when the episode ended at $s'$). Once $Q$ is
    learned the policy is free: act greedily, $\\pi(s) = \\arg\\max_a Q(s, a)$.

    Q-learning is **off-policy**: the target uses the best next action, not the one the agent
    will take, so it learns the greedy policy's values while behaving differently (e.g.
    $\\epsilon$-greedy, to explore). It is also **bootstrapped**: the target contains the
    current estimate, so values propagate backwards from the rewards one transition at a time.
    DQN is the same update with a neural network for $Q$, minimizing the squared (or Huber)
    TD error over replayed batches, with the target computed by a slowly updated copy of the
    network.

    The example runs tabular Q-learning on Gymnasium's CliffWalking (4 × 12 grid, −1 per step,
    −100 and back to the start for stepping off the cliff) and compares it with $Q^*$ from
    value iteration on the environment's model. Exploring $\\epsilon$-greedily, it still learns
    the optimal, risky path along the cliff edge (13 steps, return −13). It also checks that
    tfdl's DQN target is this formula: $r + \\gamma (1 - \\text{done}) \\max_{a'} Q(s', a')$.
    """
    import gymnasium as gym
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.rl import dqn_targets

    env = gym.make("CliffWalking-v1").unwrapped
    model, num_states, num_actions, start = env.P, 48, 4, 36  # model[s][a] = [(prob, s', r, terminated)]
    gamma, alpha, epsilon = 0.99, 0.5, 0.1

    # Q* by value iteration on the known model (deterministic moves).
    nxt = np.array([[model[s][a][0][1] for a in range(num_actions)] for s in range(num_states)])
    rew = np.array([[model[s][a][0][2] for a in range(num_actions)] for s in range(num_states)], float)
    end = np.array([[model[s][a][0][3] for a in range(num_actions)] for s in range(num_states)], float)
    q_star = np.zeros((num_states, num_actions))
    for _ in range(500):
        q_star = rew + gamma * (1 - end) * q_star.max(-1)[nxt]

    # Q-learning from experience only: epsilon-greedy episodes from the start state.
    rng = np.random.default_rng(lesson.seed)
    q = np.zeros((num_states, num_actions))
    error, returns = [], []
    for _ in range(lesson.budget(500, 1500)):
        s, total = start, 0.0
        for _ in range(1000):
            greedy = rng.choice(np.flatnonzero(q[s] == q[s].max()))
            a = rng.integers(num_actions) if rng.random() < epsilon else greedy
            s2, r, done = nxt[s, a], rew[s, a], end[s, a]
            q[s, a] += alpha * (r + gamma * (1 - done) * q[s2].max() - q[s, a])
            s, total = s2, total + r
            if done:
                break
        error.append(abs(q[start].max() - q_star[start].max()))
        returns.append(total)

    path, s = [start], start
    while not end[s, q[s].argmax()] and len(path) < 100:
        s = nxt[s, q[s].argmax()]
        path.append(s)
    greedy_return = float(sum(rew[p, q[p].argmax()] for p in path))
    lesson.number("greedy path length (steps)", len(path))
    lesson.number("greedy return", greedy_return)
    lesson.number("max_a Q*(start, a): optimal discounted return, gamma 0.99", float(q_star[start].max()))
    start_error = lesson.number("|max Q(start) - max Q*(start)| after training", error[-1])
    lesson.number("mean return of the last 50 epsilon-greedy episodes", float(np.mean(returns[-50:])))

    # tfdl's DQN target against the formula, on a random batch with some episodes ended.
    batch = 256
    r, done = rng.normal(size=batch).astype("float32"), (rng.random(batch) < 0.3).astype("float32")
    next_q = rng.normal(size=(batch, 3)).astype("float32")
    by_tfdl = dqn_targets(r, done, next_q, next_q, gamma, double=False).numpy()
    by_formula = r + gamma * (1 - done) * next_q.max(-1)
    target_difference = lesson.number("max |tfdl DQN target - numpy formula|",
                                      float(np.abs(by_tfdl - by_formula).max()))

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [1, 1.6]})
    left.semilogy(np.maximum(error, 1e-3))
    left.set_xlabel("episode")
    left.set_ylabel("|max Q(start) - V*(start)| (floor 1e-3)")
    left.set_title("Q-learning's value of the start state", fontsize=9)
    image = right.imshow(q.max(-1).reshape(4, 12), cmap="viridis")
    rows, cols = np.divmod(np.array(path + [47]), 12)  # 47: the goal
    right.plot(cols, rows, "w.-")
    right.add_patch(plt.Rectangle((0.5, 2.5), 10, 1, color="tab:red", alpha=0.8))
    right.set_title(f"learned V(s) = max_a Q(s, a)\nwhite: greedy path ({len(path)} steps), red: the cliff", fontsize=9)
    right.set_xticks([])
    right.set_yticks([])
    fig.colorbar(image, ax=right, shrink=0.8)
    lesson.figure(fig, "cliff_q_learning", "CliffWalking: the error of Q-learning's start-state value against value "
                  "iteration's Q*, and the learned values with the greedy path along the cliff edge.")
    lesson.check("the greedy policy of the learned Q takes the optimal 13-step path along the cliff",
                 len(path) == 13 and greedy_return == -13.0, f"{len(path)} steps, return {greedy_return:.0f}")
    lesson.check("Q-learning's value of the start state is within 0.05 of Q* from value iteration",
                 start_error <= 0.05, f"{start_error:.4f}")
    lesson.check("tfdl's DQN target equals r + gamma (1 - done) max_a' Q(s', a') (max difference < 1e-5)",
                 target_difference < 1e-5, f"{target_difference:.1e}")


@atlas_entry(
    95,
    formula=r"\text{online: } \nabla_\theta \sum_{i=t-B+1}^{t} \ell_i \quad\text{vs}\quad "
    r"\text{replay: } \nabla_\theta \sum_{i \in \mathcal B} \ell_i,\ \ \mathcal B \sim \operatorname{Uniform}"
    r"\{t - N + 1, \dots, t\}^B",
    see=("tfdl.rl.DQNConfig", "tfdl.rl.ReplayBuffer"),
    configs=("cartpole_dqn",),
)
def experience_replay(lesson: Lesson) -> None:
    """An agent's experience arrives as a stream of **consecutive, strongly correlated**
    transitions: the state at step $t + 1$ is almost the state at step $t$, and for long
    stretches the agent sees only one region of the state space. Stochastic gradient
    descent assumes independent samples from a fixed distribution; fed the stream in order,
    a network chases the region it is currently in and **forgets** what it learned elsewhere,
    and each transition is used once and thrown away.

    **Experience replay** (Lin, 1992; the heart of DQN) stores the last $N$ transitions in a
    buffer and trains on minibatches drawn **uniformly at random** from it. The batch mixes
    old and new experience, so consecutive samples are nearly independent and the data
    distribution changes slowly; every transition is reused in many updates, which saves
    environment steps. Because the buffer holds transitions from older policies, replay
    suits off-policy learners such as Q-learning, not on-policy ones such as A2C and PPO.
    *Prioritized* replay samples surprising transitions (large TD error) more often and
    corrects the bias with importance weights (`DQNConfig.prioritized`).

    The example fits a value function $V(x) = \\sin 3x$ along a trajectory that drifts
    from $x = -1$ to $x = 1$, once training on the latest 32 steps (online) and once on 32
    transitions drawn from tfdl's replay buffer, with the same number of gradient steps.
    An online batch covers a sliver of the states seen so far, and the network forgets the
    start of the trajectory; a replay batch is a fair sample of everything seen, and the fit
    covers the whole range. Counting 200,000 draws shows the buffer's
    sampling is uniform.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.rl import ReplayBuffer

    rng = np.random.default_rng(lesson.seed)
    steps, per_step, batch = lesson.budget(500, 2000), 4, 32  # the agent acts 4 steps per gradient step
    length = steps * per_step
    x = (np.linspace(-1, 1, length) + rng.normal(0, 0.02, length)).astype("float32")  # the drifting trajectory
    value = np.sin(3 * x)

    buffer = ReplayBuffer(capacity=length, obs_dim=1, seed=lesson.seed)
    online_batches, replay_batches = [], []
    for k in range(1, steps + 1):
        new = slice((k - 1) * per_step, k * per_step)
        buffer.add(x[new, None], np.zeros(per_step), value[new], x[new, None], np.zeros(per_step))
        latest = np.arange(max(k * per_step - batch, 0), k * per_step)
        online_batches.append(np.resize(latest, batch))  # the newest transitions, in order
        replay_batches.append(buffer.sample(batch)["indices"])

    def fit(batches):
        keras.utils.set_random_seed(lesson.seed)
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(32, activation="tanh"),
                                  keras.layers.Dense(32, activation="tanh"), keras.layers.Dense(1)])
        optimizer = keras.optimizers.Adam(0.01)
        optimizer.build(model.trainable_variables)
        inputs, targets = tf.constant(x[np.array(batches)][..., None]), tf.constant(value[np.array(batches)][..., None])

        @tf.function
        def train():
            for i in tf.range(len(batches)):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(model(inputs[i]) - targets[i]))
                optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                              model.trainable_variables))

        train()
        return model

    grid = np.linspace(-1, 1, 201, dtype="float32")
    fits, errors, spread = {}, {}, {}
    for name, batches in (("online, latest 32 steps", online_batches), ("uniform replay", replay_batches)):
        fits[name] = fit(batches)(grid[:, None]).numpy()[:, 0]
        errors[name] = lesson.number(f"{name}: MSE over the whole trajectory",
                                     float(np.mean((fits[name] - np.sin(3 * grid)) ** 2)))
        # How representative a batch is: its spread of x over the spread of everything seen so far.
        spread[name] = lesson.number(f"{name}: std of x in a batch / std of x seen so far", float(np.mean(
            [x[b].std() / x[:(k + 1) * per_step].std() for k, b in enumerate(batches) if k >= 50])))

    # Uniform sampling: counts over a full buffer against the chi-square statistic's spread.
    draws = 200_000
    counts = np.bincount(np.concatenate([buffer.sample(1000)["indices"] for _ in range(draws // 1000)]),
                         minlength=length)
    expected = draws / length
    chi_square = lesson.number("chi-square of the index counts", float(np.sum((counts - expected) ** 2 / expected)))
    dof = length - 1

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    left.plot(grid, np.sin(3 * grid), "k--", lw=1, label="true V(x) = sin 3x")
    for name, curve in fits.items():
        left.plot(grid, curve, label=f"{name} (MSE {errors[name]:.3f})")
    left.set_xlabel("state x (the trajectory drifts from -1 to 1)")
    left.set_ylabel("V(x)")
    left.legend(fontsize=8)
    left.set_title("Same gradient steps, different batches", fontsize=9)
    right.plot(online_batches[-1], "o", ms=3, label="online batch: consecutive steps")
    right.plot(np.sort(replay_batches[-1]), "o", ms=3, label="replay batch (sorted)")
    right.set_xlabel("position in the last batch")
    right.set_ylabel("time step of the transition")
    right.legend(fontsize=8)
    right.set_title("What the last batch contains", fontsize=9)
    lesson.figure(fig, "replay_vs_online", "Fitting a value function along a drifting trajectory: training on the "
                  "newest transitions forgets the early states; uniform replay keeps all of them.")
    online, replay = errors["online, latest 32 steps"], errors["uniform replay"]
    lesson.check("an online batch covers a sliver of the states seen (std ratio < 0.2), a replay batch all of them "
                 "(> 0.8)", spread["online, latest 32 steps"] < 0.2 and spread["uniform replay"] > 0.8,
                 f"{spread['online, latest 32 steps']:.3f} vs {spread['uniform replay']:.3f}")
    lesson.check("with the same gradient steps, replay's error over the trajectory is at most a fifth of online's",
                 replay <= online / 5, f"{replay:.4f} vs {online:.4f}")
    lesson.check("the buffer samples uniformly: chi-square of the counts within dof ± 5 sqrt(2 dof)",
                 abs(chi_square - dof) <= 5 * np.sqrt(2 * dof), f"{chi_square:.0f}, dof {dof}")


@atlas_entry(
    96,
    formula=r"\nabla_\theta J(\theta) = \mathbb E_{\tau \sim \pi_\theta}\Big[\sum_t "
    r"\nabla_\theta \log \pi_\theta(a_t \mid s_t)"
    r"\,\big(G_t - b(s_t)\big)\Big],\qquad \text{softmax: } \nabla_\theta \log \pi_\theta(a) = e_a - \pi_\theta",
    see=("tfdl.rl.ReinforceConfig", "tfdl.rl.A2CConfig", "tfdl.rl.PPOConfig", "tfdl.rl.categorical_log_prob"),
    configs=("cartpole_a2c", "cartpole_ppo", "pendulum_ppo"),
)
def policy_gradients(lesson: Lesson) -> None:
    """**Policy-gradient methods** parametrize the policy itself, $\\pi_\\theta(a \\mid s)$ (a network
    that outputs action probabilities, or a Gaussian's mean for continuous actions), and
    climb the expected return $J(\\theta)$ by gradient ascent. The **policy-gradient theorem**
    turns $\\nabla J$ into an expectation that can be sampled: play the policy, then raise the
    log-probability of each action in proportion to the return that followed it. No model of
    the environment and no max over actions are needed, so continuous actions and
    stochastic policies come naturally; REINFORCE, A2C and PPO are all of this family.

    The sampled gradient is **unbiased but noisy**. Subtracting a **baseline** $b(s)$ that does
    not depend on the action keeps it unbiased ($\\mathbb E[\\nabla \\log \\pi] = 0$) and can
    cut the variance enormously; the usual baseline is a learned value $V(s)$, which makes
    $G_t - V(s_t)$ an estimate of the **advantage** and leads to actor-critic methods
    (question 97).

    The example is a three-armed bandit with mean rewards 10, 10.5 and 11 under a softmax
    policy. It checks the score $\\nabla_\\theta \\log \\pi_\\theta(a) = e_a - \\pi_\\theta$ against
    TensorFlow's gradient of tfdl's categorical log-probability, shows that the average of
    20,000 single-sample estimates matches the exact gradient with and without a baseline,
    and that the baseline divides the variance by more than a hundred. Trained with the same
    step size, every run with the baseline settles on the best arm, while without it some
    runs wander off after lucky draws of a worse arm.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.rl import categorical_log_prob

    rng = np.random.default_rng(lesson.seed)
    means = np.array([10.0, 10.5, 11.0])  # rewards are these plus N(0, 1) noise

    def softmax(theta):
        e = np.exp(theta - theta.max())
        return e / e.sum()

    # The score of a softmax policy, by hand and by TensorFlow's autodiff of tfdl's log-probability.
    theta = np.array([0.3, -0.2, 0.1])
    logits = tf.Variable(np.tile(theta, (3, 1)).astype("float32"))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(categorical_log_prob(logits, tf.constant([0, 1, 2])))  # row a: log pi(a)
    by_autodiff = tape.gradient(total, logits).numpy()
    score_difference = lesson.number("max |autodiff score - (e_a - pi)|",
                                     float(np.abs(by_autodiff - (np.eye(3) - softmax(theta))).max()))

    # Single-sample estimates of the gradient, without and with the baseline b = J (the mean reward).
    pi = softmax(theta)
    exact = pi * (means - pi @ means)  # d/dtheta_k sum_a pi_a mu_a
    samples = lesson.budget(20_000, 200_000)
    actions = rng.choice(3, samples, p=pi)
    returns = means[actions] + rng.normal(size=samples)
    scores = np.eye(3)[actions] - pi
    rows = []
    variance = {}
    for name, baseline in (("no baseline", 0.0), ("baseline b = J", pi @ means)):
        estimates = scores * (returns - baseline)[:, None]
        error = np.abs(estimates.mean(0) - exact) / (estimates.std(0) / np.sqrt(samples))  # in standard errors
        variance[name] = float(estimates.var(0).sum())
        rows.append((name, *np.round(estimates.mean(0), 4), variance[name], float(error.max())))
        lesson.number(f"{name}: total variance of one estimate", variance[name])
        lesson.number(f"{name}: largest error of the mean, in standard errors", float(error.max()))
    rows.append(("exact", *np.round(exact, 4), 0.0, 0.0))
    lesson.table("Gradient estimates at θ = (0.3, -0.2, 0.1)",
                 ("estimator", "∂J/∂θ₁", "∂J/∂θ₂", "∂J/∂θ₃", "variance (trace)", "|mean - exact| / s.e. (max)"), rows)

    # REINFORCE: 16-sample estimates, plain gradient ascent, several runs per estimator.
    steps, runs = 300, lesson.budget(10, 20)
    curves = {}
    for name, use_baseline in (("no baseline", False), ("baseline b = J (estimated)", True)):
        best = np.zeros((runs, steps))
        for run in range(runs):
            theta = np.zeros(3)
            for t in range(steps):
                pi = softmax(theta)
                a = rng.choice(3, 16, p=pi)
                g = means[a] + rng.normal(size=16)
                b = g.mean() if use_baseline else 0.0
                theta += 0.1 * ((np.eye(3)[a] - pi) * (g - b)[:, None]).mean(0)
                best[run, t] = softmax(theta)[2]
        curves[name] = best
        lesson.number(f"{name}: probability of the best arm after {steps} steps, mean of runs",
                      float(best[:, -1].mean()))
        lesson.number(f"{name}: probability of the best arm after {steps} steps, worst run", float(best[:, -1].min()))

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    left.bar(list(variance), list(variance.values()), color=["tab:red", "tab:green"])
    left.set_yscale("log")
    left.set_ylabel("variance of a one-sample estimate")
    left.set_title("Same expected gradient, very different noise", fontsize=9)
    for (name, runs_), color in zip(curves.items(), ("tab:red", "tab:green")):
        right.plot(runs_.T, color=color, lw=0.6, alpha=0.5)
        right.plot(runs_.mean(0), color=color, lw=2, label=f"{name} (thin: each run)")
    right.set_xlabel("gradient step (16 samples each)")
    right.set_ylabel("π(best arm)")
    right.set_title("REINFORCE on the 3-armed bandit", fontsize=9)
    right.legend(fontsize=8)
    lesson.figure(fig, "baseline_variance", "Policy-gradient estimates with and without a baseline: both unbiased, "
                  "the baseline's far less noisy, so learning is faster.")
    plain, based = variance["no baseline"], variance["baseline b = J"]
    lesson.check("the softmax score e_a - pi equals TensorFlow's gradient of tfdl's log-probability (< 1e-6)",
                 score_difference < 1e-6, f"{score_difference:.1e}")
    lesson.check("both estimators are unbiased: their means are within 4 standard errors of the exact gradient",
                 all(row[-1] < 4 for row in rows), ", ".join(f"{row[-1]:.2f}" for row in rows[:2]))
    lesson.check("the baseline divides the variance by more than 100", plain / based > 100, f"{plain / based:.0f}x")
    worst_plain, worst_based = curves["no baseline"][:, -1].min(), curves["baseline b = J (estimated)"][:, -1].min()
    lesson.check("with the baseline every run puts >= 0.9 on the best arm; without, the worst run is 0.2 lower",
                 worst_based >= 0.9 and worst_plain <= worst_based - 0.2,
                 f"worst run {worst_based:.2f} vs {worst_plain:.2f}")


def _random_walk(envs: int, steps: int, rng):
    """The 5-state random walk: start in the middle, step left or right with probability 1/2; leaving on the
    right pays 1, on the left 0, and the episode restarts. Time-major arrays (steps, envs) of states 0-4,
    actions (1 right), rewards, next states (-1 left, 5 right: outside) and episode ends."""
    import numpy as np

    states, actions = np.zeros((steps, envs), int), rng.integers(0, 2, (steps, envs))
    state = np.full(envs, 2)
    for t in range(steps):
        states[t] = state
        state = state + 2 * actions[t] - 1
        state = np.where((state < 0) | (state > 4), 2, state)  # a new episode starts in the middle
    next_states = states + 2 * actions - 1
    ended = (next_states < 0) | (next_states > 4)
    return states, actions, (next_states > 4).astype(float), next_states, ended


@atlas_entry(
    97,
    formula=r"\theta \leftarrow \theta + \alpha_\pi\, \hat A_t \nabla_\theta \log \pi_\theta(a_t \mid s_t),\quad "
    r"w \leftarrow w - \alpha_V \nabla_w \tfrac12 \big(V_w(s_t) - \hat R_t\big)^2,\quad "
    r"\hat A_t = \sum_{l \ge 0} (\gamma\lambda)^l \delta_{t+l},\ \ "
    r"\delta_t = r_t + \gamma V_w(s_{t+1}) - V_w(s_t),\ \ \hat R_t = \hat A_t + V_w(s_t)",
    see=("tfdl.rl.generalized_advantages", "tfdl.rl.A2CConfig", "tfdl.rl.PPOConfig", "tfdl.rl.run_agent"),
    configs=("cartpole_a2c", "cartpole_ppo"),
)
def actor_critic(lesson: Lesson) -> None:
    """An **actor-critic** method trains two functions together. The **actor** is the policy
    $\\pi_\\theta(a \\mid s)$, updated by the policy gradient (question 96); the **critic** is a value
    function $V_w(s)$, regressed on the returns the actor collects. The critic serves as the
    baseline and, more than that, supplies the actor's learning signal: instead of the full
    noisy return, the actor weighs $\\nabla \\log \\pi$ by an **advantage** estimate built from the
    critic's **TD errors** $\\delta_t = r_t + \\gamma V(s_{t+1}) - V(s_t)$, "how much better did
    this step go than the critic expected". A2C runs this on short rollouts of parallel
    environments; PPO adds the clipped objective (question 99).

    **Generalized advantage estimation** (GAE; Schulman et al., 2016) sums the TD errors with
    weights $(\\gamma\\lambda)^l$ up to the end of the episode and so chooses between two
    extremes. At $\\lambda = 0$ the advantage is one TD error: it sees one reward, so its
    **variance is low**, but it trusts the critic and is **biased** when the critic is wrong.
    At $\\lambda = 1$ it is $G_t - V(s_t)$, the return minus a baseline: **unbiased** whatever
    the critic, but carrying the noise of every later reward. In between ($\\lambda \\approx 0.95$
    in tfdl's PPO, `gae_lambda`) trades one for the other; the critic's targets are
    $\\hat R_t = \\hat A_t + V(s_t)$.

    The example first checks tfdl's `generalized_advantages` against the sum above, over
    rollouts in which episodes end (and are cut by a time limit) at random. Then it runs the
    5-state random walk (start in the middle, left or right with probability 1/2, leaving on
    the right pays 1) and measures, for each $\\lambda$, the variance of the advantages and the
    actor's expected gradient, per visit, for a per-state logit of "right": exactly
    $\\tfrac14\\,(Q(s, \\text{right}) - Q(s, \\text{left})) = \\tfrac1{12}$ in every state. With the
    true critic $V(s) = (s+1)/6$, every $\\lambda$ gets the gradient right and $\\lambda = 0$ has
    the least variance; with a constant critic $V = 0.5$, $\\lambda = 0$ loses most of the
    gradient, while $\\lambda = 1$ still gets it right.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.rl import generalized_advantages

    rng = np.random.default_rng(lesson.seed)

    # GAE against its closed form, over 8 rollouts of 60 steps with random episode ends and time limits.
    gamma, lam = 0.9, 0.8
    shape = (60, 8)
    rewards, values, next_values = rng.normal(size=shape), rng.normal(size=shape), rng.normal(size=shape)
    terminated, truncated = rng.random(shape) < 0.1, rng.random(shape) < 0.05
    by_tfdl, value_targets = generalized_advantages(rewards, values, next_values, terminated, truncated, gamma, lam)
    delta = rewards + gamma * np.where(terminated, 0.0, next_values) - values
    closed_form = np.zeros(shape)
    for env in range(shape[1]):
        for t in range(shape[0]):
            for l in range(shape[0] - t):  # sum_l (gamma lambda)^l delta_{t+l}, up to the episode's last step
                closed_form[t, env] += (gamma * lam) ** l * delta[t + l, env]
                if terminated[t + l, env] or truncated[t + l, env]:
                    break
    gae_error = lesson.number("max |tfdl GAE - closed form|", float(np.abs(by_tfdl - closed_form).max()))
    target_error = lesson.number("max |value targets - (advantages + values)|",
                                 float(np.abs(value_targets - (closed_form + values)).max()))

    # The random walk: advantages under a true and a wrong critic, for several lambdas.
    states, actions, rewards, next_states, ended = _random_walk(64, lesson.budget(1000, 8000), rng)
    complete = np.flip(np.cumsum(np.flip(ended, 0), 0), 0) > 0  # drop each rollout's unfinished last episode
    score = np.where(actions == 1, 0.5, -0.5)  # d log pi(a|s) / d logit(right) at pi = 1/2
    true_gradient = 1 / 12
    critics = {"true V(s) = (s+1)/6": lambda s: (s + 1) / 6, "constant V = 0.5": lambda s: np.full(s.shape, 0.5)}
    lambdas = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0)
    variance, gradient, rows = {}, {}, []
    for name, critic in critics.items():
        variance[name], gradient[name] = [], []
        for lam in lambdas:
            advantages, _ = generalized_advantages(rewards, critic(states), critic(next_states), ended,
                                                   np.zeros_like(ended), 1.0, lam)
            a, g = advantages[complete], (score * advantages)[complete]
            variance[name].append(float(a.var()))
            gradient[name].append(float(g.mean()))
            rows.append((name, lam, variance[name][-1], gradient[name][-1], gradient[name][-1] / true_gradient - 1))
    lesson.table(f"GAE on the random walk ({int(complete.sum())} steps of complete episodes; true gradient 1/12)",
                 ("critic", "λ", "variance of Â", "actor gradient per visit", "relative bias"), rows)
    true_name, wrong_name = critics
    var0 = lesson.number("true critic, λ = 0: variance of the advantages", variance[true_name][0])
    var1 = lesson.number("true critic, λ = 1: variance of the advantages", variance[true_name][-1])
    bias = {(name, lam): gradient[name][lambdas.index(lam)] / true_gradient - 1
            for name in critics for lam in (0.0, 1.0)}
    for (name, lam), value in bias.items():
        lesson.number(f"{name}, λ = {lam:g}: relative bias of the actor gradient", value)

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    for name, marker in zip(critics, "os"):
        left.plot(lambdas, variance[name], marker + "-", label=f"critic: {name}")
        right.plot(lambdas, gradient[name], marker + "-", label=f"critic: {name}")
    right.axhline(true_gradient, color="k", ls="--", lw=1, label="true gradient 1/12")
    left.set_xlabel("GAE λ")
    left.set_ylabel("variance of the advantage estimates")
    left.set_title("Noise grows with λ", fontsize=9)
    right.set_xlabel("GAE λ")
    right.set_ylabel("actor gradient per visit (mean)")
    right.set_title("Bias of a wrong critic vanishes as λ → 1", fontsize=9)
    for ax in (left, right):
        ax.legend(fontsize=8)
    lesson.figure(fig, "gae_bias_variance", "GAE on the 5-state random walk: the variance of the advantages rises "
                  "with λ; with a wrong (constant) critic the actor's gradient is biased at small λ, not at λ = 1.")
    lesson.check("tfdl's generalized_advantages equals sum_l (gamma lambda)^l delta_{t+l} within each episode, "
                 "and its value targets are advantages + values (< 1e-5)", gae_error < 1e-5 and target_error < 1e-5,
                 f"{gae_error:.1e}, {target_error:.1e}")
    lesson.check("with the true critic, the advantages' variance at λ = 0 is at most a fifth of that at λ = 1",
                 var0 <= var1 / 5, f"{var0:.4f} vs {var1:.4f}")
    lesson.check("with the true critic, both λ = 0 and λ = 1 give the actor gradient within 10%",
                 abs(bias[true_name, 0.0]) < 0.1 and abs(bias[true_name, 1.0]) < 0.1,
                 f"{bias[true_name, 0.0]:+.3f}, {bias[true_name, 1.0]:+.3f}")
    lesson.check("with a constant critic, λ = 0 loses over half the gradient; λ = 1 stays within 10%",
                 bias[wrong_name, 0.0] < -0.5 and abs(bias[wrong_name, 1.0]) < 0.1,
                 f"{bias[wrong_name, 0.0]:+.3f} vs {bias[wrong_name, 1.0]:+.3f}")


@atlas_entry(
    98,
    formula=r"a_t = \begin{cases} \arg\max_a \hat Q_t(a) & \text{with probability } 1 - \epsilon \\ "
    r"\text{a uniformly random action} & \text{with probability } \epsilon \end{cases},\qquad "
    r"\text{regret}_T = \sum_{t=1}^{T} \big(\mu^* - \mu_{a_t}\big)",
    see=("tfdl.rl.DQNConfig",),
    configs=("cartpole_dqn",),
)
def exploration_vs_exploitation(lesson: Lesson) -> None:
    """An agent learns only about the actions it tries. **Exploitation** picks the action that
    currently looks best, cashing in what is known; **exploration** tries others, which costs
    reward now but may reveal a better action. Pure exploitation locks onto the first action
    that paid reasonably, because the estimates of untried actions never improve; pure
    exploration never uses what it learned. Every RL agent needs a rule that balances the two,
    usually exploring more at first and less as the estimates firm up.

    Common rules: **$\epsilon$-greedy** (a random action with probability $\epsilon$, often
    decayed over training, as in `DQNConfig.epsilon_start/end/fraction`); **Boltzmann**
    sampling from $\operatorname{softmax}(Q / T)$ (`DQNConfig.exploration`); **optimism**
    (start estimates high, or add a bonus for rarely tried actions, as UCB does); and, in
    policy-gradient methods, a stochastic policy kept from collapsing by an **entropy bonus**
    (`entropy_coef`). Hard-exploration problems (sparse rewards) need more, such as
    curiosity bonuses.

    The example is the 10-armed bandit testbed (arm means drawn from $N(0, 1)$, rewards with
    unit noise), 1000 steps, sample-average estimates starting at 0, averaged over hundreds
    of independent bandits. Greedy ($\epsilon = 0$) stays with the first arm that looked good
    and picks the best arm in well under half of the bandits; $\epsilon = 0.1$ finds it in most
    and ends with less total regret despite wasting a tenth of its pulls.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    rng = np.random.default_rng(lesson.seed)
    bandits, arms, steps = lesson.budget(400, 2000), 10, 1000
    means = rng.normal(size=(bandits, arms))
    best = means.argmax(1)
    rows = np.arange(bandits)
    optimal, regret = {}, {}
    for epsilon in (0.0, 0.01, 0.1):
        estimates, pulls = np.zeros((bandits, arms)), np.zeros((bandits, arms))
        chose_best, lost = np.zeros(steps), np.zeros(steps)
        for t in range(steps):
            greedy = (estimates + 1e-9 * rng.random((bandits, arms))).argmax(1)  # random tie-break
            action = np.where(rng.random(bandits) < epsilon, rng.integers(0, arms, bandits), greedy)
            reward = means[rows, action] + rng.normal(size=bandits)
            pulls[rows, action] += 1
            estimates[rows, action] += (reward - estimates[rows, action]) / pulls[rows, action]
            chose_best[t] = np.mean(action == best)
            lost[t] = np.mean(means[rows, best] - means[rows, action])
        optimal[epsilon], regret[epsilon] = chose_best, np.cumsum(lost)
        lesson.number(f"epsilon {epsilon}: share of the last 100 pulls on the best arm",
                      float(chose_best[-100:].mean()))
        lesson.number(f"epsilon {epsilon}: regret after {steps} steps", float(regret[epsilon][-1]))

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    for epsilon in optimal:
        smooth = np.convolve(optimal[epsilon], np.ones(20) / 20, mode="valid")
        left.plot(smooth, label=f"ε = {epsilon}")
        right.plot(regret[epsilon], label=f"ε = {epsilon}")
    left.set_xlabel("step")
    left.set_ylabel("share of bandits pulling the best arm")
    left.set_title(f"10-armed testbed, {bandits} bandits", fontsize=9)
    right.set_xlabel("step")
    right.set_ylabel("cumulative regret (mean)")
    right.set_title("Reward lost against always pulling the best arm", fontsize=9)
    for ax in (left, right):
        ax.legend(fontsize=8)
    lesson.figure(fig, "epsilon_greedy", "Epsilon-greedy on the 10-armed testbed: greedy gets stuck on a worse arm; "
                  "exploring 10% of the time finds the best one and loses less in total.")
    greedy_share, explore_share = optimal[0.0][-100:].mean(), optimal[0.1][-100:].mean()
    lesson.check("greedy (epsilon 0) gets stuck: it pulls the best arm in <= 50% of the bandits at the end",
                 greedy_share <= 0.5, f"{greedy_share:.2f}")
    lesson.check("epsilon 0.1 pulls the best arm in >= 70% of the bandits at the end",
                 explore_share >= 0.7, f"{explore_share:.2f}")
    lesson.check("epsilon 0.1 ends with less total regret than greedy",
                 regret[0.1][-1] < regret[0.0][-1], f"{regret[0.1][-1]:.0f} vs {regret[0.0][-1]:.0f}")


@atlas_entry(
    99,
    formula=r"L^{\text{CLIP}}(\theta) = \mathbb E_t\Big[\min\big(\rho_t A_t,\ "
    r"\operatorname{clip}(\rho_t, 1 - \epsilon, 1 + \epsilon)\, A_t\big)\Big],\qquad "
    r"\rho_t = \frac{\pi_\theta(a_t \mid s_t)}{\pi_{\theta_\text{old}}(a_t \mid s_t)}",
    see=("tfdl.rl.PPOConfig", "tfdl.rl.run_agent", "tfdl.rl.ppo_clipped_loss", "tfdl.rl.categorical_log_prob",
         "tfdl.rl.generalized_advantages"),
    configs=("cartpole_ppo", "pendulum_ppo"),
)
def proximal_policy_optimization(lesson: Lesson) -> None:
    """**Proximal Policy Optimization** (PPO; Schulman et al., 2017) is a policy-gradient method
    that reuses each batch of experience for several epochs of minibatch updates without
    letting the policy run away from the one that collected it. The plain surrogate
    $\\rho_t A_t$ has the policy gradient as its gradient at $\\rho = 1$, but maximizing it
    repeatedly on the same data drives the probability ratio $\\rho_t$ far from 1, where the
    old samples no longer describe the new policy and performance can collapse.

    PPO maximizes the **clipped** surrogate instead: once $\\rho_t$ leaves
    $[1 - \\epsilon, 1 + \\epsilon]$ in the direction the advantage favours, the objective goes
    flat and that sample's gradient is zero, so there is no incentive to move further; in the
    unfavourable direction the minimum keeps the unclipped, pessimistic term. It gets most of
    the stability of trust-region methods (TRPO) with first-order optimization only. tfdl's
    PPO adds GAE advantages (question 97), a value loss, an entropy bonus and optional
    clipping of the value update.

    The example computes tfdl's `ppo_clipped_loss` on made-up ratios and advantages and
    compares it with the formula in numpy, plots the objective per sample against $\\rho$,
    and then takes 60 gradient steps on one fixed batch of a three-action policy: the plain
    surrogate makes the favoured action almost certain (a KL divergence from the old policy
    above 1), the clipped one stops once every sample's ratio has reached the clip range.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.rl import categorical_log_prob, ppo_clipped_loss

    rng = np.random.default_rng(lesson.seed)
    eps = 0.2

    # The loss against the formula, on made-up ratios and advantages.
    ratio = rng.uniform(0.5, 1.5, 1000)
    advantage = rng.normal(size=1000)
    by_tfdl = float(ppo_clipped_loss(tf.constant(np.log(ratio)), tf.zeros(1000, tf.float64), tf.constant(advantage),
                                     eps))
    by_formula = -np.mean(np.minimum(ratio * advantage, np.clip(ratio, 1 - eps, 1 + eps) * advantage))
    difference = lesson.number("|tfdl ppo_clipped_loss - numpy formula|", abs(by_tfdl - by_formula))

    # Per-sample objective and its gradient against rho, for A = +1 and A = -1 (the loss is a mean,
    # so 201 samples times the negated loss has each sample's own slope as its gradient).
    rho = tf.Variable(np.linspace(0.5, 1.5, 201))
    curves, slopes = {}, {}
    for a in (1.0, -1.0):
        with tf.GradientTape() as tape:
            total = -201 * ppo_clipped_loss(tf.math.log(rho), tf.zeros(201, tf.float64),
                                            tf.fill([201], tf.constant(a, tf.float64)), eps)
        slopes[a] = tape.gradient(total, rho).numpy()
        curves[a] = np.minimum(rho.numpy() * a, np.clip(rho.numpy(), 1 - eps, 1 + eps) * a)
    grid = rho.numpy()
    flat_when_favoured = bool(np.all(slopes[1.0][grid > 1 + eps + 1e-9] == 0)
                              and np.all(slopes[-1.0][grid < 1 - eps - 1e-9] == 0))
    live_otherwise = bool(np.all(slopes[1.0][grid < 1 + eps - 1e-9] != 0)
                          and np.all(slopes[-1.0][grid > 1 - eps + 1e-9] != 0))

    # Many epochs on one batch: the plain surrogate's ratios run away, the clipped ones stop.
    actions = rng.integers(0, 3, 256)
    advantages = np.where(actions == 2, 1.0, -0.5).astype("float32")  # action 2 looked good
    old_logits = tf.zeros((256, 3))
    old_log_probs = categorical_log_prob(old_logits, actions)
    divergence = {}
    for name, clip in (("plain surrogate", 1e6), ("clipped, eps = 0.2", eps)):
        logits = tf.Variable(tf.zeros((1, 3)))
        optimizer = keras.optimizers.SGD(0.5)
        history = []
        for _ in range(lesson.budget(60, 150)):
            with tf.GradientTape() as tape:
                log_probs = categorical_log_prob(tf.repeat(logits, 256, axis=0), actions)
                loss = ppo_clipped_loss(log_probs, old_log_probs, advantages, clip)
            optimizer.apply_gradients([(tape.gradient(loss, logits), logits)])
            new = tf.nn.softmax(logits[0]).numpy()
            history.append(float(np.sum(np.log((1 / 3) / new)) / 3))  # KL(old || new), old uniform
        divergence[name] = np.array(history)
        lesson.number(f"{name}: KL(old policy || new policy) after the steps", history[-1])
        lesson.number(f"{name}: probability of the favoured action after the steps", float(new[2]))

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    for a, color in ((1.0, "tab:green"), (-1.0, "tab:red")):
        left.plot(grid, curves[a], color=color, label=f"min(ρA, clip(ρ)A), A = {a:+.0f}")
        left.plot(grid, grid * a, color=color, ls=":", lw=1)
    left.axvspan(1 - eps, 1 + eps, color="0.92")
    left.set_xlabel("probability ratio ρ")
    left.set_ylabel("objective of one sample")
    left.set_title("Clipped objective (dotted: unclipped ρA; grey: 1 ± ε)", fontsize=9)
    left.legend(fontsize=8)
    for (name, history), color in zip(divergence.items(), ("tab:red", "tab:blue")):
        right.plot(history, color=color, label=name)
    right.set_yscale("log")
    right.set_xlabel("gradient step on the same batch")
    right.set_ylabel("KL(old policy || new policy)")
    right.set_title("Reusing one batch: the clip keeps the new policy close", fontsize=9)
    right.legend(fontsize=8)
    lesson.figure(fig, "ppo_clip", "PPO's clipped surrogate per sample, and the probability ratios over many steps "
                  "on one batch with the plain and the clipped surrogate.")
    plain, clipped = divergence["plain surrogate"][-1], divergence["clipped, eps = 0.2"][-1]
    lesson.check("tfdl's ppo_clipped_loss equals -mean(min(r A, clip(r, 1-eps, 1+eps) A)) (difference < 1e-9)",
                 difference < 1e-9, f"{difference:.1e}")
    lesson.check("the gradient is zero exactly where the ratio has left [1-eps, 1+eps] in the advantage's favour, "
                 "and non-zero elsewhere", flat_when_favoured and live_otherwise)
    lesson.check("after many steps on one batch the plain surrogate's policy runs away (KL > 1); the clipped one "
                 "stays close (KL < 0.1)", plain > 1 and clipped < 0.1, f"KL {plain:.3f} vs {clipped:.3f}")


@atlas_entry(
    100,
    formula=r"\mathbb E[T_\text{find}] = \sum_{k=1}^{n} 2^k = 2^{n+1} - 2 \ \text{(random exploration, an } "
    r"n\text{-step combination lock)};\qquad "
    r"w \leftarrow w + \alpha\,(r + \gamma\, 2w - w) \cdot 1 \ \Rightarrow\ "
    r"w_k = \big(1 + \alpha(2\gamma - 1)\big)^k w_0 \to \infty \text{ for } \gamma > \tfrac12",
    see=("tfdl.rl.RLConfig", "tfdl.rl.DQNConfig", "tfdl.rl.run_agent"),
    configs=("cartpole_dqn", "cartpole_ppo"),
)
def scaling_deep_rl(lesson: Lesson) -> None:
    """Deep RL that works on CartPole often fails when the task grows, for reasons that
    supervised learning does not have. **Exploration and sample cost**: the agent must find
    the reward before it can learn from it, and with sparse rewards the number of environment
    steps random exploration needs can grow exponentially with the length of the task.
    **Instability**: RL combines the **deadly triad** (Sutton & Barto, ch. 11) of function
    approximation, bootstrapping (targets built from the agent's own estimates) and
    off-policy data (a replay buffer, an exploring behaviour policy); together they can make
    the value estimates diverge even on a two-state problem, and target networks, clipped
    updates and small learning rates only make it less likely.

    Other difficulties, named here rather than measured: the data are **non-stationary**
    (the policy changes the states it sees, so the training distribution moves under the
    network); every sample costs a simulator or robot step, so experiments are expensive
    and simulators must be fast or run in parallel; **reward design** decides what gets
    learned (question 93); results vary strongly **across seeds**, so one run proves little
    and comparisons need several seeds and confidence intervals; and large systems split
    acting from learning (many **distributed actors** feeding one learner), which makes the
    data slightly off-policy and needs corrections such as V-trace.

    The example measures two of these. A **combination lock**: $n$ states in a row, one of two
    actions (secret, per state) moves on, the other sends the agent back to the start, and
    only the end pays. A uniformly random agent needs $2^{n+1} - 2$ steps on average to be
    rewarded once: each extra state doubles the cost. And the **two-state $w$/$2w$ example**:
    the value of state 1 is $w$, that of state 2 is $2w$ (one shared weight), state 1 leads to
    state 2 with reward 0, and state 2 ends the episode with reward 0, so the truth is $w = 0$.
    Semi-gradient TD(0) on data that visit state 1 nine times as often as the policy would
    diverges; with any one ingredient of the triad removed (the on-policy visit distribution,
    Monte-Carlo targets instead of bootstrapping, or a table instead of the shared weight)
    the same updates converge.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    rng = np.random.default_rng(lesson.seed)

    # The combination lock: steps until a uniformly random agent first opens it, over many runs.
    trials, lengths = lesson.budget(400, 2000), np.arange(1, lesson.budget(11, 13))
    measured, standard_error = [], []
    for n in lengths:
        position, steps, running = np.zeros(trials, int), np.zeros(trials), np.ones(trials, bool)
        while running.any():
            right = rng.random(trials) < 0.5  # the random action is the secret one with probability 1/2
            position = np.where(running, np.where(right, position + 1, 0), position)
            steps += running
            running &= position < n
        measured.append(steps.mean())
        standard_error.append(steps.std() / np.sqrt(trials))
    measured, standard_error = np.array(measured), np.array(standard_error)
    formula = 2.0 ** (lengths + 1) - 2
    lesson.table(f"Combination lock: steps until a random agent is first rewarded ({trials} runs each)",
                 ("lock length n", "measured (mean)", "standard error", "2^(n+1) - 2"),
                 list(zip(lengths, measured, standard_error, formula)))
    longer = lengths >= 4  # where 2^(n+1) - 2 is already close to a pure power of 2
    slope = lesson.number("log2 growth of the steps per extra state, n >= 4",
                          float(np.polyfit(lengths[longer], np.log2(measured[longer]), 1)[0]))
    worst_z = lesson.number("largest |measured - formula| in standard errors",
                            float(np.max(np.abs(measured - formula) / standard_error)))

    # The deadly triad on the w / 2w example: V(1) = w, V(2) = 2w; 1 -> 2 (reward 0), 2 -> end (reward 0).
    gamma, alpha, updates = 0.99, 0.1, lesson.budget(2000, 5000)
    feature = {1: 1.0, 2: 2.0}

    def td_run(visit_state_1: float, bootstrap: bool, table: bool):
        """Semi-gradient updates on states drawn with P(state 1) = visit_state_1; returns |V| after each."""
        w = np.array([1.0, 2.0]) if table else np.array([1.0])  # the same starting values V(1) = 1, V(2) = 2
        history = []
        for state in np.where(rng.random(updates) < visit_state_1, 1, 2):
            value = (lambda s: w[s - 1]) if table else (lambda s: feature[s] * w[0])
            if state == 1:
                target = gamma * value(2) if bootstrap else 0.0  # the return from state 1 is 0
            else:
                target = 0.0  # state 2 ends the episode
            gradient = np.eye(2)[state - 1] if table else np.array([feature[state]])
            w = w + alpha * (target - value(state)) * gradient
            history.append(max(abs(value(1)), abs(value(2))))
        return np.array(history)

    runs = {
        "triad: linear, TD, off-policy (90% state 1)": td_run(0.9, bootstrap=True, table=False),
        "on-policy visits (50% state 1)": td_run(0.5, bootstrap=True, table=False),
        "Monte-Carlo targets (no bootstrapping)": td_run(0.9, bootstrap=False, table=False),
        "table (no shared weight)": td_run(0.9, bootstrap=True, table=True),
    }
    for name, history in runs.items():
        lesson.number(f"{name}: max |V| after {updates} updates", float(history[-1]))

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    left.errorbar(lengths, measured, yerr=2 * standard_error, fmt="o", ms=4, label="measured (± 2 s.e.)")
    left.plot(lengths, formula, "k--", lw=1, label="$2^{n+1} - 2$")
    left.set_yscale("log", base=2)
    left.set_xlabel("lock length n (states)")
    left.set_ylabel("steps until first reward")
    left.set_title("Random exploration on a combination lock", fontsize=9)
    left.legend(fontsize=8)
    for name, history in runs.items():
        right.plot(np.maximum(history, 1e-12), label=name)
    right.set_yscale("log")
    right.set_ylim(1e-12, None)
    right.set_xlabel("TD update")
    right.set_ylabel("max |V(s)| (truth 0; floor 1e-12)")
    right.set_title("The w / 2w example: the deadly triad diverges", fontsize=9)
    right.legend(fontsize=7)
    lesson.figure(fig, "scaling_challenges", "Left: the steps a random agent needs to find a sparse reward double "
                  "with each state of the lock. Right: off-policy TD with a shared linear weight diverges; dropping "
                  "any one of the three ingredients converges.")
    lesson.check("random exploration of the n-state lock takes 2^(n+1) - 2 steps: every n within 4 standard errors",
                 worst_z < 4, f"worst {worst_z:.1f} s.e.")
    lesson.check("each extra state doubles the steps to the first reward (log2 slope for n >= 4 within 1 ± 0.1)",
                 abs(slope - 1) < 0.1, f"{slope:.3f}")
    triad, *fixes = runs.values()
    lesson.check("the deadly triad diverges: |V| grows from 2 to above 1e10", triad[-1] > 1e10, f"{triad[-1]:.1e}")
    lesson.check("removing any one ingredient converges: |V| below 1e-3 for on-policy, Monte-Carlo and tabular",
                 all(history[-1] < 1e-3 for history in fixes),
                 ", ".join(f"{history[-1]:.1e}" for history in fixes))
