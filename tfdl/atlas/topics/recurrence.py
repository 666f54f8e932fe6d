"""Atlas entries 26-30: recurrent networks, how they carry state through a sequence, their limits, LSTM and GRU."""

from __future__ import annotations

from tfdl.atlas.entry import atlas_entry
from tfdl.atlas.lesson import Lesson


def _fit(model, x, y, *, steps: int, learning_rate: float, seed: int, loss: str = "mse", batch_size: int = 64,
         clipnorm: float | None = None, points: int = 1) -> list[float]:
    """Train `model` with Adam for `steps` mini-batch steps over shuffled, repeated `(x, y)`.

    The steps run as `points` tf.data epochs (Keras's per-epoch cost on numpy arrays would dominate these tiny
    experiments); returns the mean training loss of each.
    """
    import keras
    import tensorflow as tf

    feed = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).repeat().batch(batch_size)
    per_point = steps // points
    model.compile(keras.optimizers.Adam(learning_rate, clipnorm=clipnorm), loss,
                  steps_per_execution=min(per_point, 50))
    history = model.fit(feed, steps_per_epoch=per_point, epochs=points, verbose=0)
    return history.history["loss"]


def _sigmoid(z):
    import numpy as np

    return 1.0 / (1.0 + np.exp(-z))


@atlas_entry(
    26,
    formula=r"h_t = \tanh\big(W x_t + U h_{t-1} + b\big),\quad h_0 = 0,\qquad \hat y = V h_T + c,\qquad "
    r"\#\text{parameters of the cell} = n_h (n_h + n_x + 1)",
    see=("tfdl.models.build_rnn", "tfdl.models.build_rnn_regressor", "tfdl.models.RNNRegressorConfig"),
    configs=("sine_forecaster",),
)
def recurrent_neural_network(lesson: Lesson) -> None:
    """A **recurrent neural network** (RNN) processes a sequence one step at a time and keeps a
    **hidden state** $h_t$, a vector that summarizes everything it has read so far. At each
    step the same cell combines the new input $x_t$ with the previous state $h_{t-1}$ (the
    formula) to give the next state; the state after the last step — or the state at every
    step, for sequence labelling — feeds an output layer. Because the weights $W$, $U$, $b$
    are **shared across time steps**, the network has the same number of parameters
    whatever the sequence length and applies the same rule at every position, just as a
    convolution applies the same filter at every pixel.

    Unrolled over $T$ steps, an RNN is a $T$-layer deep network with tied weights; it is
    trained by backpropagation through that unrolled graph (*backpropagation through
    time*). RNNs were the standard model for text, speech and time series before
    transformers; the plain cell here (Keras's `SimpleRNN`) is the basis of the gated LSTM
    and GRU cells that fix its short memory (questions 28-30).

    The example trains tfdl's recurrent forecaster with a `SimpleRNN` cell to predict the
    next value of noisy sine waves, then recomputes its forward pass with the recurrence
    written in numpy from the trained weights, and runs the same weights on sequences of
    other lengths.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.models import build_model
    from tfdl.pipelines import generate

    length, units = 20, 16
    data = generate("sine", lesson.budget(1200, 4000), lesson.seed, {"length": length, "noise": 0.1})
    x, y = data.features, data.labels
    train, test = slice(0, len(x) * 3 // 4), slice(len(x) * 3 // 4, None)
    model = build_model("rnn_regressor", {"input_shape": (None, 1), "cell": "simple", "units": [units]})
    _fit(model, x[train], y[train], steps=lesson.budget(300, 2000), learning_rate=0.01, seed=lesson.seed)
    rnn_mse = lesson.number("RNN forecast: test MSE", float(np.mean((model(x[test]).numpy()[:, 0] - y[test]) ** 2)))
    naive_mse = lesson.number("naive forecast (repeat the last value): test MSE",
                              float(np.mean((x[test][:, -1, 0] - y[test]) ** 2)))

    # The recurrence by hand, from the trained weights.
    w, u, b = (v.numpy() for v in model.get_layer("simple_1").weights)
    v, c = (t.numpy() for t in model.get_layer("forecast").weights)
    h = np.zeros((len(x[test]), units), "float32")
    states = []
    for t in range(length):
        h = np.tanh(x[test][:, t] @ w + h @ u + b)
        states.append(h)
    by_hand = h @ v + c
    difference = float(np.abs(by_hand - model(x[test]).numpy()).max())
    lesson.number("largest |numpy recurrence - Keras|", difference)
    sequence_layer = keras.layers.SimpleRNN(units, return_sequences=True)  # the same cell, every state returned
    sequence_layer.build((None, length, 1))
    sequence_layer.set_weights([w, u, b])
    states_error = float(np.abs(sequence_layer(x[test]).numpy() - np.stack(states, 1)).max())
    lesson.number("largest |numpy states h_1..h_T - Keras return_sequences|", states_error)

    by_formula = units * (units + 1 + 1)
    count = model.get_layer("simple_1").count_params()
    lesson.number("parameters of the recurrent cell", count)
    rows = []
    for steps in (5, 20, 100):  # the same model, the same weights, any length
        longer = generate("sine", 200, lesson.seed + 1, {"length": steps, "noise": 0.1})
        error = float(np.mean((model(longer.features).numpy()[:, 0] - longer.labels) ** 2))
        rows.append((steps, count, error))
    lesson.table("The same trained weights on sequences of other lengths", ("sequence length", "cell parameters",
                 "forecast MSE"), rows)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), layout="constrained")
    shown = np.stack(states, 1)[0]
    axes[0].plot(np.arange(1, length + 1), x[test][0, :, 0], "k.-", label="input $x_t$")
    axes[0].plot(length + 1, y[test][0], "go", label="next value (target)")
    axes[0].plot(length + 1, model(x[test][:1]).numpy()[0, 0], "rx", ms=9, label="RNN forecast")
    axes[0].set_xlabel("time step t")
    axes[0].set_title("one test window and its forecast", fontsize=9)
    axes[0].legend(fontsize=7)
    image = axes[1].imshow(shown.T, aspect="auto", cmap="RdBu", vmin=-1, vmax=1,
                           extent=(0.5, length + 0.5, units - 0.5, -0.5))
    axes[1].set_xlabel("time step t")
    axes[1].set_ylabel("hidden unit")
    axes[1].set_title("hidden state $h_t$ of that window, computed in numpy", fontsize=9)
    fig.colorbar(image, ax=axes[1])
    lesson.figure(fig, "rnn_state", "Left: a noisy sine window and the trained RNN's forecast of the next value. "
                  "Right: its hidden state at each step, by the recurrence in numpy.")
    lesson.check("the recurrence h_t = tanh(W x_t + U h_{t-1} + b) in numpy equals Keras's SimpleRNN, every state "
                 "and the forecast (max error < 1e-5)", max(difference, states_error) < 1e-5,
                 f"{difference:.1e} forecast, {states_error:.1e} states")
    lesson.check("the cell owns n_h (n_h + n_x + 1) parameters, whatever the sequence length", count == by_formula,
                 f"{count} = {units} × ({units} + 1 + 1)")
    lesson.check("reading the whole window, the RNN forecasts better than repeating the last value (MSE below 0.7×)",
                 rnn_mse < 0.7 * naive_mse, f"{rnn_mse:.4f} vs {naive_mse:.4f}")


@atlas_entry(
    27,
    formula=r"h_t = f(h_{t-1}, x_t;\ \theta)\ \ (t = 1, \dots, T),\qquad "
    r"\text{task here: } y = \sum_{t=1}^{T} 0.6^{\,T-t}\, x_t",
    see=("tfdl.models.build_rnn_regressor", "tfdl.models.RNNRegressorConfig", "tfdl.models.build_rnn"),
    configs=("sine_forecaster", "sentences_lstm"),
)
def rnns_and_sequential_data(lesson: Lesson) -> None:
    """An RNN reads a sequence **in order, one element at a time**, and carries a hidden state
    from each step to the next; the state is the network's memory of the prefix read so
    far, and each step updates it with the same learned function $f$. Three things follow:

    - **Order matters.** The output depends on which element came when, not only on which
      elements occurred; a model that pools over time (a bag of steps) cannot tell a
      sequence from its reverse.
    - **Any length.** Because one cell is applied at every step, the same weights process
      sequences of 5 or 500 steps; no fixed input window is needed.
    - **Batches of unequal lengths** are padded to a common length and **masked**: at a
      masked step the state is passed on unchanged, so padding changes nothing.

    Training unrolls the loop over the sequence and backpropagates through every step
    (*backpropagation through time*). The output can be read at the last step (one label
    or forecast per sequence), at every step (tagging, language modelling), or fed to a
    decoder that generates another sequence (translation).

    The example's target weights each input by how recent it is, $0.6^{T-t}$. A
    `SimpleRNN` trained on sequences of 10 steps learns it, and the measured sensitivity
    of its output to each input step ($\\partial \\hat y / \\partial x_t$) recovers the
    weights; an order-blind model with as many units does not, nor does the RNN reading
    the sequence reversed. The same RNN then handles sequences of 5 to 40 steps, and a
    padded, masked sequence gives exactly the unpadded output.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.models import build_model

    rng = np.random.default_rng(lesson.seed)

    def sequences(count, length):
        x = rng.uniform(-1, 1, (count, length, 1)).astype("float32")
        return x, (x[..., 0] * 0.6 ** np.arange(length - 1, -1, -1)).sum(1).astype("float32")

    x, y = sequences(2000, 10)
    padding = -9.0  # a step whose value is -9 is padding: inputs lie in [-1, 1]
    rnn = build_model("rnn_regressor", {"input_shape": (None, 1), "cell": "simple", "units": [16],
                                        "mask_value": padding})
    layers = keras.layers
    bag = keras.Sequential([keras.Input((None, 1)), layers.Dense(16, activation="relu"),  # order-blind:
                            layers.GlobalAveragePooling1D(), layers.Dense(16, activation="relu"),  # pools over time
                            layers.Dense(1)])
    for model in (rnn, bag):
        _fit(model, x, y, steps=lesson.budget(250, 1500), learning_rate=0.01, seed=lesson.seed)

    lengths, rows, errors = (5, 10, 20, 40), [], {"RNN": [], "order-blind (pooled over time)": [],
                                                  "RNN, sequence reversed": []}
    for length in lengths:
        xt, yt = sequences(500, length)
        for name, prediction in (("RNN", rnn(xt)), ("order-blind (pooled over time)", bag(xt)),
                                 ("RNN, sequence reversed", rnn(xt[:, ::-1]))):
            errors[name].append(float(np.mean((prediction.numpy()[:, 0] - yt) ** 2)))
        rows.append((length, float(yt.var()), *(errors[name][-1] for name in errors)))
    lesson.table("Test MSE by sequence length (trained on length 10)",
                 ("length", "target variance", *errors), rows)
    lesson.number("RNN: test MSE at length 10", errors["RNN"][1])
    lesson.number("order-blind model: test MSE at length 10", errors["order-blind (pooled over time)"][1])
    lesson.number("RNN: test MSE at length 40", errors["RNN"][3])

    # What the state remembers: the output's sensitivity to each step's input, measured by the gradient.
    xt, _ = sequences(500, 10)
    xt = tf.constant(xt)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        prediction = tf.reduce_sum(rnn(xt))
    sensitivity = tape.gradient(prediction, xt).numpy()[..., 0].mean(0)
    weights = 0.6 ** np.arange(9, -1, -1)
    sensitivity_error = float(np.abs(sensitivity - weights).max())
    lesson.number("largest |mean dŷ/dx_t - 0.6^(T-t)|", sensitivity_error)

    short, _ = sequences(100, 5)
    padded = np.concatenate([short, np.full((100, 5, 1), padding, "float32")], axis=1)
    mask_error = float(np.abs(rnn(padded).numpy() - rnn(short).numpy()).max())
    lesson.number("largest |output, padded and masked to 10 steps - output, 5 steps|", mask_error)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), layout="constrained")
    steps = np.arange(1, 11)
    axes[0].bar(steps - 0.2, weights, 0.4, label="target weight $0.6^{T-t}$")
    axes[0].bar(steps + 0.2, sensitivity, 0.4, label=r"RNN: mean $\partial \hat y / \partial x_t$")
    axes[0].set_xlabel("time step t (T = 10)")
    axes[0].set_ylabel("weight of $x_t$ in the output")
    axes[0].set_title("what the hidden state remembers", fontsize=9)
    axes[0].legend(fontsize=8)
    for name, values in errors.items():
        axes[1].plot(lengths, values, "o-", label=name)
    axes[1].set_xscale("log", base=2)
    axes[1].set_yscale("log")
    axes[1].set_xticks(lengths, [str(n) for n in lengths])
    axes[1].set_xlabel("sequence length (trained on 10)")
    axes[1].set_ylabel("test MSE")
    axes[1].set_title("the same weights on any length; order matters", fontsize=9)
    axes[1].legend(fontsize=8)
    lesson.figure(fig, "sequential", "Left: the trained RNN's sensitivity to each input step against the weight the "
                  "target gives it. Right: test error at other lengths than the training length, for the RNN, an "
                  "order-blind model, and the RNN reading the sequence reversed.")
    rnn_mse, bag_mse = errors["RNN"][1], errors["order-blind (pooled over time)"][1]
    lesson.check("the RNN learns the order-dependent target; an order-blind model of the same width cannot "
                 "(RNN MSE below 1/20 of it)", rnn_mse < bag_mse / 20, f"RNN {rnn_mse:.4f}, order-blind {bag_mse:.4f}")
    lesson.check("the output's measured sensitivity to each step matches the target's weights 0.6^(T-t) "
                 "(max difference < 0.1)", sensitivity_error < 0.1, f"{sensitivity_error:.3f}")
    worst = max(errors["RNN"][i] / rows[i][1] for i in range(len(lengths)))
    lesson.check("the same weights work at lengths 5 to 40 (MSE below 5% of the target's variance at every length)",
                 worst < 0.05, f"worst MSE / variance {worst:.4f}")
    lesson.check("a sequence padded with masked steps gives exactly the output of the unpadded one (< 1e-6)",
                 mask_error < 1e-6, f"{mask_error:.1e}")


@atlas_entry(
    28,
    formula=r"\frac{\partial h_T}{\partial h_t} = \prod_{k=t+1}^{T} \operatorname{diag}\big(1 - h_k^2\big)\, U^\top,"
    r"\qquad \Big\lVert \frac{\partial h_T}{\partial h_t} \Big\rVert \le \big(\max_k \lVert \operatorname{diag}"
    r"(1 - h_k^2) \rVert\, \lVert U \rVert\big)^{T-t}",
    see=("tfdl.models.build_rnn_regressor", "tfdl.models.RNNRegressorConfig", "tfdl.pipelines.generate"),
    configs=("adding_lstm",),
)
def rnn_limitations(lesson: Lesson) -> None:
    """The gradient that tells an RNN how an early input should have changed its output
    passes backwards through every step in between, and each step multiplies it by the
    recurrent weights and the activation's derivative (the formula). Over $T - t$ steps the
    factor is roughly a power: below one it **vanishes** exponentially, above one it
    **explodes**. Vanishing is the common case with tanh, whose derivative is below one and
    near zero where units saturate, so a plain RNN learns short-range dependencies and
    effectively cannot learn ones spanning more than some tens of steps; exploding
    gradients make training unstable and are tamed by **gradient clipping**.

    Other limitations follow from the step-by-step design. The state is a **fixed-size
    bottleneck**: everything about the past must fit in one vector, however long the
    sequence. Computation is **sequential**: step $t$ needs step $t-1$, so the time steps
    of one sequence cannot run in parallel on a GPU, and training on long sequences is
    slow. And a one-directional RNN sees only the past at each step (bidirectional layers
    fix that where the whole sequence is available). Gated cells (LSTM, GRU; questions 29
    and 30) address the vanishing gradient; attention and transformers address all three.

    The example measures the Jacobian $\\partial h_T / \\partial x_t$ of a `SimpleRNN` going
    back in time, for a linear cell whose recurrent matrix is $\\rho$ times an orthogonal
    one (the norm is then exactly $\\rho^{T-t}\\sqrt{n}$) and for tanh, where saturation
    makes it vanish even with $\\rho = 1$. Then it trains the same small `SimpleRNN` on
    the adding problem (sum the two marked values of a sequence): at length 5 it learns,
    at length 30 it stays at the error of predicting the mean.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.models import build_model
    from tfdl.pipelines import generate

    n, length = 16, 60
    orthogonal = keras.initializers.Orthogonal(seed=lesson.seed)((n, n)).numpy()
    x = tf.constant(np.random.default_rng(lesson.seed).normal(size=(4, length, n)).astype("float32"))
    back = np.arange(length)  # steps between x_t and h_T
    jacobian_norms, exact = {}, True
    for activation, rho in (("linear", 0.9), ("linear", 1.0), ("linear", 1.1), ("tanh", 1.0)):
        cell = keras.layers.SimpleRNN(n, activation=activation)  # W = I, so dh_T/dx_t = dh_T/dh_t
        cell.build((None, length, n))
        cell.set_weights([np.eye(n, dtype="float32"), rho * orthogonal, np.zeros(n, "float32")])
        with tf.GradientTape() as tape:
            tape.watch(x)
            state = cell(x)
        jacobian = tape.batch_jacobian(state, x).numpy()  # [batch, n, time, n]
        norms = np.sqrt((jacobian**2).sum(axis=(1, 3))).mean(0)[::-1]  # Frobenius norm, by steps back
        jacobian_norms[f"{activation}, ρ = {rho}"] = norms
        if activation == "linear":
            exact &= bool(np.allclose(norms, rho**back * np.sqrt(n), rtol=1e-3))
    lesson.table("Norm of dh_T/dx_t, by steps back", ("cell", "0", "10", "30", "50"),
                 [(name, *(norms[k] for k in (0, 10, 30, 50))) for name, norms in jacobian_norms.items()])
    tanh_ratio = lesson.number("tanh, ρ = 1: |dh_T/dx_(T-50)| / |dh_T/dx_T|",
                               float(jacobian_norms["tanh, ρ = 1.0"][50] / jacobian_norms["tanh, ρ = 1.0"][0]))

    runs = {("simple", 5): None, ("simple", 30): None}
    if lesson.full:
        runs[("lstm", 30)] = None
    curves, test_mse = {}, {}
    for cell, steps in runs:
        data = generate("adding_problem", 3000, lesson.seed, {"length": steps})
        model = build_model("rnn_regressor", {"input_shape": (steps, 2), "cell": cell, "units": [16]})
        curves[cell, steps] = _fit(model, data.features[:2500], data.labels[:2500],
                                   steps=lesson.budget(250, 1500), learning_rate=0.01, clipnorm=1.0,
                                   seed=lesson.seed, points=lesson.budget(5, 30))
        predicted = model(data.features[2500:]).numpy()[:, 0]
        test_mse[cell, steps] = lesson.number(f"{cell}, length {steps}: adding problem test MSE",
                                              float(np.mean((predicted - data.labels[2500:]) ** 2)))
    baseline = 1 / 6  # predicting the mean sum, 1.0: the variance of the sum of two uniforms

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    for name, norms in jacobian_norms.items():
        axes[0].plot(back, norms, label=name)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("steps back, T − t")
    axes[0].set_ylabel(r"$\|\partial h_T / \partial x_t\|$")
    axes[0].set_title("gradient through time (linear: exactly $\\rho^{T-t}\\sqrt{n}$)", fontsize=9)
    axes[0].legend(fontsize=8)
    for (cell, steps), losses in curves.items():
        seen = np.linspace(0, lesson.budget(250, 1500), len(losses) + 1)[1:]
        axes[1].plot(seen, losses, "o-", label=f"{'SimpleRNN' if cell == 'simple' else 'LSTM'}, length {steps}")
    axes[1].axhline(baseline, color="k", ls="--", lw=1, label="predict the mean (1/6)")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("training step")
    axes[1].set_ylabel("training MSE")
    axes[1].set_title("the adding problem: short vs long range", fontsize=9)
    axes[1].legend(fontsize=8)
    lesson.figure(fig, "rnn_limits", "Left: how the gradient of the last state with respect to earlier inputs "
                  "shrinks or grows with distance. Right: a SimpleRNN learns the adding problem at length 5 but not "
                  "at length 30.")
    lesson.check("for a linear RNN with U = ρ·orthogonal the gradient norm is exactly ρ^(T−t)·√n: it vanishes "
                 "for ρ = 0.9 and explodes for ρ = 1.1", exact,
                 f"50 steps back: {jacobian_norms['linear, ρ = 0.9'][50]:.3g} and "
                 f"{jacobian_norms['linear, ρ = 1.1'][50]:.3g} (√n = {np.sqrt(n):.3g})")
    lesson.check("with tanh the gradient vanishes even for ρ = 1: 50 steps back it is below 1e-4 of its size at "
                 "the last step", tanh_ratio < 1e-4, f"{tanh_ratio:.1e}")
    lesson.check("the SimpleRNN learns the adding problem at length 5 (MSE below 30% of the mean predictor's 1/6) "
                 "but not at length 30 (above 80% of it)",
                 test_mse["simple", 5] < 0.3 * baseline and test_mse["simple", 30] > 0.8 * baseline,
                 f"{test_mse['simple', 5]:.4f} and {test_mse['simple', 30]:.4f}")
    if lesson.full:
        lesson.check("an LSTM with the same budget learns it at length 30 (MSE below 30% of 1/6)",
                     test_mse["lstm", 30] < 0.3 * baseline, f"{test_mse['lstm', 30]:.4f}")


@atlas_entry(
    29,
    formula=r"\begin{aligned}"
    r"i_t &= \sigma(W_i x_t + U_i h_{t-1} + b_i), & f_t &= \sigma(W_f x_t + U_f h_{t-1} + b_f), & "
    r"o_t &= \sigma(W_o x_t + U_o h_{t-1} + b_o),\\"
    r"g_t &= \tanh(W_g x_t + U_g h_{t-1} + b_g), & c_t &= f_t \odot c_{t-1} + i_t \odot g_t, & "
    r"h_t &= o_t \odot \tanh(c_t),\\"
    r"&\#\text{parameters} = 4\,\big(n_h (n_h + n_x) + n_h\big)"
    r"\end{aligned}",
    see=("tfdl.models.build_rnn", "tfdl.models.build_rnn_regressor", "tfdl.models.RNNConfig"),
    configs=("adding_lstm", "sentences_lstm"),
)
def lstm_architecture(lesson: Lesson) -> None:
    """A **long short-term memory** (LSTM) cell adds to the RNN's hidden state $h_t$ a second
    state, the **cell state** $c_t$, and three **gates**, each a sigmoid layer with values
    between 0 and 1 computed from the current input and the previous hidden state:

    - the **forget gate** $f_t$ decides how much of each entry of $c_{t-1}$ to keep;
    - the **input gate** $i_t$ decides how much of the candidate $g_t$ (a tanh layer, the
      new content) to write;
    - the **output gate** $o_t$ decides how much of $\\tanh(c_t)$ to expose as $h_t$, the
      output and the state the gates see at the next step.

    The cell state is updated **additively**, $c_t = f_t \\odot c_{t-1} + i_t \\odot g_t$,
    not squashed through a weight matrix and a tanh at every step. Along it the gradient
    is multiplied only by the forget gate, $\\partial c_t / \\partial c_{t-1} = f_t$
    (plus the paths through the gates), so with $f_t \\approx 1$ information and gradient
    pass hundreds of steps intact: the network *learns* when to remember, when to write and
    when to forget. Keras initializes the forget gate's bias to 1 (`unit_forget_bias`) so
    that it starts open. The four gate layers each have input weights, recurrent weights
    and a bias, four times a plain RNN's parameters.

    The example computes an LSTM layer step by step in numpy and compares it with
    `keras.layers.LSTM`, checks the parameter count, and then sets the weights of a
    one-unit LSTM in tfdl's forecaster by hand so that it solves the adding problem at
    length 100 — which a plain RNN cannot learn (question 28): the input gate opens only
    at the two marked steps, the forget gate stays open, and the cell state holds the
    running sum across the unmarked steps.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.models import build_model
    from tfdl.pipelines import generate

    # The equations in numpy against Keras (gate order in Keras's weights: i, f, g, o).
    n_x, n_h, length = 3, 8, 12
    layer = keras.layers.LSTM(n_h, return_sequences=True, return_state=True)
    x = np.random.default_rng(lesson.seed).normal(size=(16, length, n_x)).astype("float32")
    keras_h, _, keras_c = (value.numpy() for value in layer(x))
    kernel, recurrent, bias = (v.numpy() for v in layer.weights)
    h, c = np.zeros((16, n_h)), np.zeros((16, n_h))
    states = []
    for t in range(length):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, f, g, o = _sigmoid(z[:, :n_h]), _sigmoid(z[:, n_h:2 * n_h]), np.tanh(z[:, 2 * n_h:3 * n_h]), \
            _sigmoid(z[:, 3 * n_h:])
        c = f * c + i * g
        h = o * np.tanh(c)
        states.append(h)
    equations_error = float(max(np.abs(np.stack(states, 1) - keras_h).max(), np.abs(c - keras_c).max()))
    lesson.number("largest |numpy LSTM - keras.layers.LSTM| (h_1..h_T and c_T)", equations_error)
    by_formula = 4 * (n_h * (n_h + n_x) + n_h)
    lesson.number("LSTM(8) on 3 features: parameters", layer.count_params())

    # A one-unit LSTM whose weights are set by hand solves the adding problem (inputs: value, marker).
    steps = 100
    data = generate("adding_problem", lesson.budget(500, 4000), lesson.seed, {"length": steps})
    model = build_model("rnn_regressor", {"input_shape": (steps, 2), "cell": "lstm", "units": [1]})
    #                        i       f     g     o      (value weight, marker weight, bias per gate)
    kernel = np.array([[0.0, 0.0, 0.1, 0.0],     # value: only the candidate g = tanh(0.1 value) reads it
                       [20.0, 0.0, 0.0, 0.0]],   # marker: opens the input gate
                      "float32")
    bias = np.array([-10.0, 12.0, 0.0, 12.0], "float32")  # input gate shut, forget and output gates open
    model.get_layer("lstm_1").set_weights([kernel, np.zeros((1, 4), "float32"), bias])
    model.get_layer("forecast").set_weights([np.array([[10.0]], "float32"), np.zeros(1, "float32")])
    predicted = model(data.features).numpy()[:, 0]
    hand_mse = lesson.number("hand-set one-unit LSTM: adding problem MSE, length 100",
                             float(np.mean((predicted - data.labels) ** 2)))
    lesson.number("predicting the mean sum: MSE", float(np.mean((data.labels - 1.0) ** 2)))

    # Its gates and cell state along one sequence, by the equations.
    sequence = data.features[0]
    c, trace = 0.0, {"input gate i": [], "forget gate f": [], "cell state c (×10)": []}
    for value, marker in sequence:
        i, f, g = _sigmoid(20 * marker - 10), _sigmoid(12.0), np.tanh(0.1 * value)
        c = f * c + i * g
        trace["input gate i"].append(i)
        trace["forget gate f"].append(f)
        trace["cell state c (×10)"].append(10 * c)

    fig, axes = plt.subplots(2, 1, figsize=(9, 4.2), sharex=True, layout="constrained",
                             gridspec_kw={"height_ratios": [1, 1.4]})
    axes[0].bar(np.arange(steps), sequence[:, 0], color="0.7", label="value")
    marked = np.flatnonzero(sequence[:, 1])
    axes[0].bar(marked, sequence[marked, 0], color="tab:red", label="marked value")
    axes[0].set_ylabel("input")
    axes[0].set_ylim(0, 1.35)
    axes[0].legend(fontsize=8, loc="upper right", ncol=2)
    for name, values in trace.items():
        axes[1].plot(values, label=name)
    axes[1].axhline(data.labels[0], color="k", ls=":", lw=1, label=f"target: sum of marked = {data.labels[0]:.3f}")
    axes[1].set_xlabel("time step")
    axes[1].legend(fontsize=8, loc="center left")
    axes[0].set_title("a hand-set one-unit LSTM on the adding problem: the gates decide what the cell state keeps",
                      fontsize=9)
    lesson.figure(fig, "lstm_memory", "One adding-problem sequence of 100 steps: the input gate opens at the two "
                  "marked steps, the forget gate stays open, and the cell state holds the running sum.")
    lesson.check("the LSTM equations in numpy equal keras.layers.LSTM, every h_t and the last c_T (max error < 1e-5)",
                 equations_error < 1e-5, f"{equations_error:.1e}")
    lesson.check("an LSTM layer owns 4 (n_h (n_h + n_x) + n_h) parameters", layer.count_params() == by_formula,
                 f"{layer.count_params()} = 4 × ({n_h} × ({n_h} + {n_x}) + {n_h})")
    lesson.check("with gates set by hand, one LSTM unit solves the adding problem over 100 steps (MSE below 1% of "
                 "the mean predictor's 1/6)", hand_mse < 0.01 / 6, f"{hand_mse:.2e}")


@atlas_entry(
    30,
    formula=r"\begin{aligned}"
    r"z_t &= \sigma(W_z x_t + U_z h_{t-1} + b_z), \qquad r_t = \sigma(W_r x_t + U_r h_{t-1} + b_r),\\"
    r"\tilde h_t &= \tanh\big(W_h x_t + r_t \odot (U_h h_{t-1} + b'_h) + b_h\big), \qquad "
    r"h_t = z_t \odot h_{t-1} + (1 - z_t) \odot \tilde h_t,\\"
    r"\#\text{parameters} &= 3\,\big(n_h (n_h + n_x) + 2 n_h\big)\ \text{(Keras, reset\_after)}"
    r"\end{aligned}",
    see=("tfdl.models.build_rnn", "tfdl.models.build_rnn_regressor", "tfdl.models.RNNConfig"),
    configs=("adding_lstm",),
)
def gru_vs_lstm(lesson: Lesson) -> None:
    """A **gated recurrent unit** (GRU) is a simplified LSTM. It keeps one state vector $h_t$
    (no separate cell state, no output gate) and uses two gates: the **update gate** $z_t$
    interpolates between keeping the old state and taking the candidate $\\tilde h_t$ —
    one gate doing the work of the LSTM's forget and input gates, tied so that they sum to
    one — and the **reset gate** $r_t$ decides how much of the old state the candidate may
    use. Like the LSTM's cell state, $h_t$ is updated by interpolation, so with $z_t
    \\approx 1$ it carries information and gradient over long spans.

    The differences are practical. A GRU has three weight blocks where an LSTM has four,
    so about 3/4 of the parameters and of the computation per step; it often trains as
    well and sometimes faster on small data. The LSTM's separate cell state and output
    gate let it keep memory that it does not expose, and make it somewhat more expressive
    (it can count without bound, for example); on large tasks neither wins consistently,
    so the choice is empirical. Keras's GRU uses the cuDNN variant (`reset_after=True`):
    the reset gate multiplies $U_h h_{t-1}$ *after* the matrix product, and the
    recurrent part has its own bias, hence $2 n_h$ biases per block.

    The example computes the GRU equations in numpy against `keras.layers.GRU`, counts
    both cells' parameters by the formulas, times a training step of each, and trains
    both, with the same width and budget, on the adding problem.
    """
    import time

    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.models import build_model
    from tfdl.pipelines import generate

    # The GRU equations in numpy against Keras (weight blocks in the order z, r, h).
    n_x, n_h, length = 3, 8, 12
    layer = keras.layers.GRU(n_h, return_sequences=True)
    x = np.random.default_rng(lesson.seed).normal(size=(16, length, n_x)).astype("float32")
    keras_h = layer(x).numpy()
    kernel, recurrent, bias = (v.numpy() for v in layer.weights)  # bias: [input bias, recurrent bias]
    h, states = np.zeros((16, n_h)), []
    for t in range(length):
        from_x, from_h = x[:, t] @ kernel + bias[0], h @ recurrent + bias[1]
        z = _sigmoid(from_x[:, :n_h] + from_h[:, :n_h])
        r = _sigmoid(from_x[:, n_h:2 * n_h] + from_h[:, n_h:2 * n_h])
        candidate = np.tanh(from_x[:, 2 * n_h:] + r * from_h[:, 2 * n_h:])
        h = z * h + (1 - z) * candidate
        states.append(h)
    equations_error = lesson.number("largest |numpy GRU - keras.layers.GRU|",
                                    float(np.abs(np.stack(states, 1) - keras_h).max()))

    count_rows, counts_match = [], True
    for units, features in ((8, 3), (32, 2), (128, 64)):
        lstm_count = keras.layers.LSTM(units)
        gru_count = keras.layers.GRU(units)
        for cell in (lstm_count, gru_count):
            cell.build((None, None, features))
        lstm_formula = 4 * (units * (units + features) + units)
        gru_formula = 3 * (units * (units + features) + 2 * units)
        counts_match &= lstm_count.count_params() == lstm_formula and gru_count.count_params() == gru_formula
        count_rows.append((units, features, lstm_count.count_params(), gru_count.count_params(),
                           gru_count.count_params() / lstm_count.count_params()))
    lesson.table("Parameters (Keras count_params, equal to the formulas)",
                 ("units", "input features", "LSTM", "GRU", "GRU / LSTM"), count_rows)

    steps, budget = lesson.budget(15, 50), lesson.budget(250, 1500)
    data = generate("adding_problem", 3000, lesson.seed, {"length": steps})
    curves, test_mse, step_ms = {}, {}, {}
    for cell in ("lstm", "gru"):
        model = build_model("rnn_regressor", {"input_shape": (steps, 2), "cell": cell, "units": [16]})
        curves[cell] = _fit(model, data.features[:2500], data.labels[:2500], steps=budget, learning_rate=0.01,
                            clipnorm=1.0, seed=lesson.seed, points=lesson.budget(5, 30))
        test_mse[cell] = lesson.number(f"{cell.upper()}: adding problem test MSE, length {steps}",
                                       float(np.mean((model(data.features[2500:]).numpy()[:, 0]
                                                      - data.labels[2500:]) ** 2)))
        # Time one forward and backward pass of a wider layer on a batch (median of repeats, after a warm-up).
        wide = keras.layers.LSTM(128) if cell == "lstm" else keras.layers.GRU(128)
        batch = tf.random.normal((64, 50, 32), seed=lesson.seed)

        @tf.function
        def step(batch, wide=wide):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(wide(batch))
            return tape.gradient(loss, wide.trainable_weights)

        step(batch)
        times = []
        for _ in range(lesson.budget(5, 20)):
            start = time.perf_counter()
            step(batch)
            times.append(time.perf_counter() - start)
        step_ms[cell] = lesson.number(f"{cell.upper()}(128): forward + backward, batch 64 × 50 steps (ms)",
                                      1000 * float(np.median(times)))
    baseline = 1 / 6

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), layout="constrained", gridspec_kw={"width_ratios": [1.6, 1]})
    seen = np.linspace(0, budget, len(curves["lstm"]) + 1)[1:]
    for cell, losses in curves.items():
        axes[0].plot(seen, losses, "o-", label=f"{cell.upper()}, 16 units")
    axes[0].axhline(baseline, color="k", ls="--", lw=1, label="predict the mean (1/6)")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("training step")
    axes[0].set_ylabel("training MSE")
    axes[0].set_title(f"the adding problem, length {steps}", fontsize=9)
    axes[0].legend(fontsize=8)
    bars = axes[1].bar(["LSTM", "GRU"], [count_rows[2][2], count_rows[2][3]], color=["tab:blue", "tab:orange"])
    for bar, cell in zip(bars, ("lstm", "gru")):
        axes[1].text(bar.get_x() + bar.get_width() / 2, bar.get_height(), f"{step_ms[cell]:.1f} ms/step",
                     ha="center", va="bottom", fontsize=8)
    axes[1].set_ylabel("parameters, 128 units on 64 features")
    axes[1].set_title("size, and time of a training step", fontsize=9)
    lesson.figure(fig, "gru_vs_lstm", "Left: LSTM and GRU of the same width trained on the adding problem. Right: "
                  "their parameter counts and the time of one forward and backward pass.")
    lesson.check("the GRU equations (reset gate after the recurrent product) in numpy equal keras.layers.GRU "
                 "(max error < 1e-5)", equations_error < 1e-5, f"{equations_error:.1e}")
    lesson.check("Keras's counts equal 4 (n_h (n_h + n_x) + n_h) for the LSTM and 3 (n_h (n_h + n_x) + 2 n_h) for "
                 "the GRU, 3/4 as many up to the extra biases",
                 counts_match and all(0.7 < row[4] < 0.85 for row in count_rows),
                 ", ".join(f"{row[2]} vs {row[3]}" for row in count_rows))
    lesson.check("with the same width and budget both learn the adding problem (MSE below 30% of the mean "
                 "predictor's 1/6)", max(test_mse.values()) < 0.3 * baseline,
                 f"LSTM {test_mse['lstm']:.4f}, GRU {test_mse['gru']:.4f}")
