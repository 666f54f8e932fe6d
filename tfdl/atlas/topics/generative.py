"""Atlas entries 34-37 and 81-90: GANs and VAEs, their players, their failures, and their latent spaces.

The GAN lessons train tiny two-player models on one- and two-dimensional
mixtures of Gaussians, where the true distribution is known and every claim
(the optimal discriminator, the Wasserstein distance, modes covered) can be
computed exactly; tfdl's image GANs (`tfdl.models.GAN`, `WGAN`,
`ConditionalGAN`) run the same games at full size from the digits configs.
The VAE lessons train `tfdl.models.build_vae` on the 8x8 digits.
"""

from __future__ import annotations

from tfdl.atlas.entry import atlas_entry
from tfdl.atlas.lesson import Lesson


def _two_bumps(n: int, seed: int):
    """`n` draws from 0.5 N(-2, 0.5^2) + 0.5 N(2, 0.5^2), float32 of shape (n, 1): the 1-D lessons' data."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.choice([-2.0, 2.0], size=(n, 1))
    return (centres + 0.5 * rng.normal(size=(n, 1))).astype("float32")


def _two_bumps_density(x):
    """The density of `_two_bumps` at `x`."""
    import numpy as np

    bump = lambda c: np.exp(-0.5 * ((x - c) / 0.5) ** 2) / (0.5 * np.sqrt(2 * np.pi))  # noqa: E731
    return 0.5 * bump(-2.0) + 0.5 * bump(2.0)


def _ring(n: int, seed: int, modes: int = 8, radius: float = 2.0, std: float = 0.05):
    """`n` points of a ring of `modes` Gaussians (float32 (n, 2)), and each point's mode."""
    import numpy as np

    rng = np.random.default_rng(seed)
    mode = rng.integers(modes, size=n)
    angle = 2 * np.pi * mode / modes
    points = radius * np.stack([np.cos(angle), np.sin(angle)], axis=1) + std * rng.normal(size=(n, 2))
    return points.astype("float32"), mode


def _ring_modes(points, modes: int = 8, radius: float = 2.0, std: float = 0.05):
    """Per mode of the ring, how many `points` lie within 3 standard deviations of it; and the share that do."""
    import numpy as np

    angle = 2 * np.pi * np.arange(modes) / modes
    centres = radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    distance = np.linalg.norm(points[:, None, :] - centres[None], axis=-1)
    close = distance.min(axis=1) < 3 * std
    return np.bincount(distance.argmin(axis=1)[close], minlength=modes), float(close.mean())


def _mlp(inputs: int, outputs: int, name: str, width: int = 64, depth: int = 2):
    """A small ReLU MLP: the players of the toy GANs."""
    import keras

    layers = [keras.Input((inputs,))] + [keras.layers.Dense(width, activation="relu") for _ in range(depth)]
    return keras.Sequential(layers + [keras.layers.Dense(outputs)], name=name)


def _w1(a, b) -> float:
    """Wasserstein-1 distance between two equal-size 1-D samples: the mean gap of their sorted values."""
    import numpy as np

    return float(np.mean(np.abs(np.sort(np.ravel(a)) - np.sort(np.ravel(b)))))


class _ToyGAN:
    """Generator G: z -> x and discriminator D: x -> logit, trained by alternating gradient steps.

    `loss="minimax"` is the original GAN game with the non-saturating
    generator loss (D: max log D(x) + log(1 - D(G(z))); G: max log D(G(z)));
    `loss="wasserstein"` makes D a critic trained on `tfdl.losses.critic_loss`
    plus `penalty` x `tfdl.losses.gradient_penalty`, G on `generator_loss`.
    `train(steps, d=..., g=...)` runs `steps` rounds inside one tf.function
    (`d` discriminator steps, then `g` generator steps, each on a fresh batch)
    and returns the last round's losses and the discriminator's accuracy.
    """

    def __init__(self, data, *, latent_dim: int = 1, loss: str = "minimax", learning_rate: float = 1e-3,
                 beta_1: float = 0.5, beta_2: float = 0.999, penalty: float = 10.0, batch: int = 128,
                 width: int = 64, seed: int = 0):
        import keras
        import tensorflow as tf

        self.data, self.latent_dim, self.loss, self.penalty, self.batch = data, latent_dim, loss, penalty, batch
        self.generator = _mlp(latent_dim, data.shape[1], "generator", width)
        self.discriminator = _mlp(data.shape[1], 1, "discriminator", width)
        self.g_optimizer = keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2)
        self.d_optimizer = keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.seeds = keras.random.SeedGenerator(seed)
        self._rounds = tf.function(self._rounds_eager)

    def noise(self, n: int):
        import keras

        return keras.random.normal((n, self.latent_dim), seed=self.seeds)

    def _d_step(self):
        import tensorflow as tf

        from tfdl.losses import critic_loss, gradient_penalty

        real = tf.gather(self.data, tf.random.uniform((self.batch,), 0, len(self.data), tf.int32))
        fake = self.generator(self.noise(self.batch))
        D = self.discriminator
        with tf.GradientTape() as tape:
            real_logits, fake_logits = D(real), D(fake)
            if self.loss == "minimax":
                loss = (tf.reduce_mean(tf.nn.softplus(-real_logits))  # -log D(x)
                        + tf.reduce_mean(tf.nn.softplus(fake_logits)))  # -log(1 - D(G(z)))
            else:
                loss = critic_loss(real_logits, fake_logits) + self.penalty * gradient_penalty(D, real, fake,
                                                                                              seed=self.seeds)
        self.d_optimizer.apply(tape.gradient(loss, D.trainable_variables), D.trainable_variables)
        accuracy = 0.5 * (tf.reduce_mean(tf.cast(real_logits > 0, "float32"))
                          + tf.reduce_mean(tf.cast(fake_logits < 0, "float32")))
        return loss, accuracy

    def _g_step(self):
        import tensorflow as tf

        from tfdl.losses import generator_loss

        with tf.GradientTape() as tape:
            fake_logits = self.discriminator(self.generator(self.noise(self.batch)))
            if self.loss == "minimax":
                loss = tf.reduce_mean(tf.nn.softplus(-fake_logits))  # -log D(G(z)), the non-saturating form
            else:
                loss = generator_loss(fake_logits)
        G = self.generator
        self.g_optimizer.apply(tape.gradient(loss, G.trainable_variables), G.trainable_variables)
        return loss

    def _rounds_eager(self, steps, d: int, g: int):
        import tensorflow as tf

        d_loss, accuracy, g_loss = tf.constant(0.0), tf.constant(0.0), tf.constant(0.0)
        for _ in tf.range(steps):
            for _ in range(d):
                d_loss, accuracy = self._d_step()
            for _ in range(g):
                g_loss = self._g_step()
        return d_loss, g_loss, accuracy

    def train(self, steps: int, d: int = 1, g: int = 1) -> tuple[float, float, float]:
        import tensorflow as tf

        return tuple(float(v) for v in self._rounds(tf.constant(steps), d, g))

    def sample(self, n: int, seed: int = 0):
        import numpy as np

        z = np.random.default_rng(seed).normal(size=(n, self.latent_dim)).astype("float32")
        return self.generator(z).numpy()

    def prob_real(self, x):
        """D(x): the discriminator's probability that `x` is real."""
        import numpy as np

        return 1.0 / (1.0 + np.exp(-self.discriminator(np.asarray(x, "float32")).numpy()))


@atlas_entry(
    34,
    formula=r"\min_G \max_D\; V(D, G) = \mathbb{E}_{x \sim p_{\text{data}}}\big[\log D(x)\big] "
    r"+ \mathbb{E}_{z \sim p(z)}\big[\log\big(1 - D(G(z))\big)\big]",
    see=("tfdl.models.GAN", "tfdl.models.build_dcgan", "tfdl.models.GANConfig"),
    configs=("digits_dcgan",),
)
def gan_architecture(lesson: Lesson) -> None:
    """A **generative adversarial network** is two networks trained against each other. The
    **generator** $G$ maps a noise vector $z$, drawn from a fixed simple distribution such as
    $\\mathcal N(0, I)$, to a sample $G(z)$ with the shape of the data: an MLP for points, a
    stack of transposed convolutions that grows a small feature map into an image for
    pictures (DCGAN). The **discriminator** $D$ maps a sample to one number, the probability
    (a logit, in practice) that it came from the data rather than from $G$: an MLP, or
    strided convolutions that shrink an image to a score.

    The two are joined only through the loss. $D$ is trained as a binary classifier, real
    against generated; $G$ is trained through $D$ — the gradient of $D$'s verdict flows back
    through $D$ (whose weights are held) into $G$ — to make its samples be called real. One
    training iteration alternates a step of each. At the game's equilibrium $G$'s
    distribution equals the data's and $D$ outputs $\\frac12$ everywhere. The likelihood of a
    sample is never computed: $G$ is an *implicit* model, from which one can sample but
    whose density is unknown.

    The example prints the two players of tfdl's DCGAN for 8×8 digits (noise → image and
    image → score), then trains the same two-player structure as small MLPs on a 1-D
    mixture of two Gaussians, where the generator's distribution can be compared with the
    data's exactly.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.models import build_dcgan, GANConfig

    dcgan = build_dcgan(GANConfig(input_shape=(64,), image_shape=(8, 8, 1), latent_dim=32))
    for player in (dcgan.generator, dcgan.discriminator):
        lesson.table(f"tfdl's DCGAN {player.name} for 8×8 digits", ("layer", "output shape", "parameters"),
                     [(layer.name, str(tuple(layer.output.shape)[1:]), layer.count_params())
                      for layer in player.layers])

    data = _two_bumps(4096, lesson.seed)
    gan = _ToyGAN(data, seed=lesson.seed)
    grid = np.linspace(-4.5, 4.5, 200, dtype="float32")[:, None]
    before = gan.sample(4096, seed=lesson.seed + 1)
    rounds, chunk, curve = lesson.budget(600, 3000), lesson.budget(100, 200), []
    for _ in range(rounds // chunk):
        d_loss, g_loss, accuracy = gan.train(chunk)
        curve.append((_w1(gan.sample(4096, seed=lesson.seed + 1), data), accuracy))
    after = gan.sample(4096, seed=lesson.seed + 1)
    w1_before = lesson.number("W1(generated, data) before training", _w1(before, data))
    w1_after = lesson.number("W1(generated, data) after training", _w1(after, data))
    d_on_data = lesson.number("mean D(x) on data after training", float(gan.prob_real(data).mean()))
    d_on_fake = lesson.number("mean D(G(z)) after training", float(gan.prob_real(after).mean()))

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    bins = np.linspace(-4.5, 4.5, 61)
    axes[0].plot(grid[:, 0], _two_bumps_density(grid[:, 0]), "k", label="data density")
    axes[0].hist(before[:, 0], bins, density=True, alpha=0.4, label="G(z) before training")
    axes[0].hist(after[:, 0], bins, density=True, alpha=0.5, label="G(z) after training")
    axes[0].plot(grid[:, 0], gan.prob_real(grid)[:, 0], "r--", label="D(x) after training")
    axes[0].set(xlabel="x", ylabel="density / probability", ylim=(0, 1.3),
                title="Generator's distribution moves to the data")
    axes[0].legend(fontsize=7)
    steps = chunk * np.arange(1, len(curve) + 1)
    axes[1].plot(steps, [c[0] for c in curve], label="W1(G(z), data)")
    axes[1].plot(steps, [c[1] for c in curve], label="D's accuracy, real vs fake")
    axes[1].axhline(0.5, color="grey", linestyle=":", linewidth=1)
    axes[1].set(xlabel="training rounds (one D step + one G step)", title="The game settles")
    axes[1].legend(fontsize=8)
    lesson.figure(fig, "toy_gan", "A generator MLP (1-D noise to x) and a discriminator MLP (x to a logit) "
                  "trained against each other on a mixture of two Gaussians.")

    lesson.check("training moves G's distribution to the data: W1 falls at least 5-fold",
                 w1_after < w1_before / 5, f"{w1_before:.3f} -> {w1_after:.3f}")
    lesson.check("at the end D cannot tell real from generated: mean D(x) and D(G(z)) both in [0.35, 0.65]",
                 0.35 <= d_on_data <= 0.65 and 0.35 <= d_on_fake <= 0.65, f"{d_on_data:.3f}, {d_on_fake:.3f}")


@atlas_entry(
    35,
    formula=r"D:\ \max_D\ \mathbb{E}_{x}\big[\log D(x)\big] + \mathbb{E}_{z}\big[\log(1 - D(G(z)))\big],"
    r"\qquad G:\ \max_G\ \mathbb{E}_{z}\big[\log D(G(z))\big]\ \ (\text{non-saturating form})",
    see=("tfdl.models.GAN", "tfdl.models.build_dcgan"),
    configs=("digits_dcgan",),
)
def generator_and_discriminator_roles(lesson: Lesson) -> None:
    """The **discriminator** is the critic: a binary classifier that learns, from examples, what
    separates real data from the generator's current output, and so turns "looks like the
    data" into a differentiable score. The **generator** is the forger: it never sees a real
    example; its only training signal is the gradient of the discriminator's score with
    respect to its samples, which says in which direction each sample would look more real.

    Neither role works alone, and the example shows why by switching players off. A
    discriminator trained against a frozen generator becomes a perfect classifier, and
    nothing is generated. A generator trained against a frozen discriminator learns to
    fool it — but by moving its samples to wherever that fixed discriminator happens to
    score highest, not to the data: it exploits the critic instead of matching the
    distribution. Only when they alternate does each fix the other's mistakes: the
    discriminator learns to reject the places the generator over-fills, the generator
    moves on, and the pair settles where the generated distribution matches the data and
    the discriminator is reduced to a coin flip ($D \\approx \\frac12$).
    """
    import matplotlib.pyplot as plt
    import numpy as np

    data = _two_bumps(4096, lesson.seed)
    steps = lesson.budget(600, 3000)
    runs = {  # name: (discriminator steps, generator steps) per round
        "D alone (G frozen)": (1, 0),
        "G alone (against the D trained alone)": (0, 1),
        "D and G alternating": (1, 1),
    }
    gans, results = {}, {}
    d_alone = _ToyGAN(data, seed=lesson.seed)
    d_alone.train(steps, d=1, g=0)
    g_alone = _ToyGAN(data, seed=lesson.seed)
    g_alone.discriminator.set_weights(d_alone.discriminator.get_weights())  # the critic trained alone, frozen
    g_alone.train(steps, d=0, g=1)
    both = _ToyGAN(data, seed=lesson.seed)
    both.train(steps, d=1, g=1)
    for name, gan in zip(runs, (d_alone, g_alone, both)):
        fake = gan.sample(4096, seed=lesson.seed + 1)
        real_right = (gan.prob_real(data) > 0.5).mean()
        fake_right = (gan.prob_real(fake) < 0.5).mean()
        results[name] = {"D accuracy": float(0.5 * (real_right + fake_right)),
                         "mean D(G(z))": float(gan.prob_real(fake).mean()), "W1(G(z), data)": _w1(fake, data)}
        gans[name] = (gan, fake)
    for name, row in results.items():
        for key, value in row.items():
            lesson.number(f"{name}: {key}", value)
    lesson.table("Each player alone, then both", ("training", "D accuracy", "mean D(G(z))", "W1(G(z), data)"),
                 [(name, *row.values()) for name, row in results.items()])

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), sharey=True)
    grid = np.linspace(-4.5, 4.5, 200, dtype="float32")[:, None]
    bins = np.linspace(-4.5, 4.5, 61)
    for ax, (name, (gan, fake)) in zip(axes, gans.items()):
        ax.plot(grid[:, 0], _two_bumps_density(grid[:, 0]), "k", label="data density")
        ax.hist(fake[:, 0], bins, density=True, alpha=0.5, label="G(z)")
        ax.plot(grid[:, 0], gan.prob_real(grid)[:, 0], "r--", label="D(x)")
        ax.set(title=name, xlabel="x", ylim=(0, 1.3))
    axes[0].legend(fontsize=8)
    lesson.figure(fig, "roles", "Left: D alone separates data from the frozen generator perfectly. Middle: G alone "
                  "moves its samples to where the frozen D scores highest, fooling it without matching the data. "
                  "Right: alternating, G matches the data and D is left near 1/2.")

    d_only, g_only, joint = results.values()
    lesson.check("the discriminator alone becomes a near-perfect classifier (accuracy >= 0.95)",
                 d_only["D accuracy"] >= 0.95, f"{d_only['D accuracy']:.3f}")
    lesson.check("the generator alone fools its frozen critic (mean D(G(z)) >= 0.9) ...",
                 g_only["mean D(G(z))"] >= 0.9, f"{g_only['mean D(G(z))']:.3f}")
    lesson.check("... without matching the data: W1 at least 3x that of the alternating game",
                 g_only["W1(G(z), data)"] >= 3 * joint["W1(G(z), data)"],
                 f"{g_only['W1(G(z), data)']:.3f} vs {joint['W1(G(z), data)']:.3f}")
    lesson.check("alternating, D ends near chance (accuracy <= 0.65)", joint["D accuracy"] <= 0.65,
                 f"{joint['D accuracy']:.3f}")


def _digits():
    """The 8x8 digits as float32 rows in [0, 1], and their labels."""
    from tfdl.pipelines import load_sklearn_dataset

    digits = load_sklearn_dataset("digits")
    return (digits.features / 16.0).astype("float32"), digits.labels


def _fit_vae(x, *, latent_dim: int, epochs: int, seed: int):
    """tfdl's VAE (dense 128-64 encoder, mirrored decoder) fit on `x`; returns it and its per-epoch history."""
    import keras
    import tensorflow as tf

    from tfdl.models import VAEConfig, build_vae

    vae = build_vae(VAEConfig(input_shape=(64,), latent_dim=latent_dim, hidden_units=(128, 64), seed=seed))
    vae.compile(keras.optimizers.Adam(3e-3), steps_per_execution=28)
    feed = tf.data.Dataset.from_tensor_slices(x).shuffle(len(x), seed=seed).repeat().batch(64)
    history = vae.fit(feed, steps_per_epoch=len(x) // 64, epochs=epochs, shuffle=False, verbose=0).history
    return vae, history


@atlas_entry(
    36,
    formula=r"\log p_\theta(x) \ \ge\ \underbrace{\mathbb{E}_{q_\phi(z\mid x)}\big[\log p_\theta(x \mid z)\big]}"
    r"_{\text{reconstruction}} - \underbrace{D_{\mathrm{KL}}\big(q_\phi(z \mid x)\,\|\,\mathcal N(0, I)\big)}_{"
    r"\text{regularizer}},\qquad D_{\mathrm{KL}} = -\tfrac12 \sum_j \big(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\big)",
    see=("tfdl.models.build_vae", "tfdl.models.VAE", "tfdl.losses.vae_loss", "tfdl.losses.gaussian_kl_divergence",
         "tfdl.layers.Sampling"),
)
def variational_autoencoder(lesson: Lesson) -> None:
    """A **variational autoencoder** is a generative model with a latent variable: draw a code
    $z \\sim \\mathcal N(0, I)$, then decode it into a distribution $p_\\theta(x \\mid z)$ over the
    data (here a Bernoulli probability per pixel). Training that decoder by maximum likelihood
    would need $p_\\theta(x) = \\int p_\\theta(x\\mid z)\\,p(z)\\,dz$, which is intractable, so a
    second network, the **encoder**, proposes for each input a Gaussian
    $q_\\phi(z \\mid x) = \\mathcal N(\\mu(x), \\operatorname{diag}\\sigma^2(x))$ over the codes that
    could have produced it. Both are trained together to maximize the **evidence lower bound**
    (ELBO), a lower bound on $\\log p_\\theta(x)$.

    The ELBO has two terms that pull against each other. The **reconstruction** term asks
    that a code drawn from $q_\\phi(z\\mid x)$ decode back to $x$; alone it would turn the
    model into a plain autoencoder. The **KL term**, in closed form for two Gaussians, pulls
    each posterior towards the prior $\\mathcal N(0, I)$; it costs nats for every bit of
    information the code carries about $x$ and keeps the codes of all inputs in one region
    around the origin, so that a $z$ drawn from the prior decodes into something plausible.
    The sample $z$ is drawn as $\\mu + \\sigma\\,\\epsilon$ (question 90), so gradients reach the
    encoder. Once trained, new data is made by decoding prior samples.

    The example checks tfdl's loss against the formula in numpy, trains tfdl's VAE on the
    8×8 digits, and follows the two terms.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from tfdl.losses import vae_loss

    x, _ = _digits()
    vae, history = _fit_vae(x, latent_dim=8, epochs=lesson.budget(10, 60), seed=lesson.seed)

    batch = x[:256]
    out = vae(batch, training=False)
    p, mu, log_var = (np.asarray(out[k], "float64") for k in ("reconstruction", "mean", "log_var"))
    p = np.clip(p, 1e-7, 1 - 1e-7)  # Keras clips probabilities the same way
    by_formula = (-(batch * np.log(p) + (1 - batch) * np.log(1 - p)).sum(1)
                  - 0.5 * (1 + log_var - mu ** 2 - np.exp(log_var)).sum(1))
    by_tfdl = np.asarray(vae_loss(batch, out["reconstruction"], out["mean"], out["log_var"]))
    gap = lesson.number("max |vae_loss - formula| / formula", float(np.max(np.abs(by_tfdl - by_formula) / by_formula)))

    first, last = history["loss"][0], history["loss"][-1]
    lesson.number("negative ELBO, first epoch (nats)", first)
    lesson.number("negative ELBO, last epoch (nats)", last)
    lesson.number("reconstruction term, last epoch (nats)", history["reconstruction"][-1])
    lesson.number("KL term, last epoch (nats)", history["kl"][-1])
    squared_error = lesson.number("reconstruction squared error per digit",
                                  float(((vae.reconstruct(x) - x) ** 2).sum(1).mean()))
    baseline = lesson.number("squared error of the mean digit", float(((x - x.mean(0)) ** 2).sum(1).mean()))

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), gridspec_kw={"width_ratios": [1.4, 1, 1]})
    epochs = np.arange(1, len(history["loss"]) + 1)
    for key, label in (("loss", "negative ELBO"), ("reconstruction", "reconstruction"), ("kl", "KL to the prior")):
        axes[0].plot(epochs, history[key], label=label)
    axes[0].set(xlabel="epoch", ylabel="nats per digit", title="The two terms of the loss")
    axes[0].legend(fontsize=8)
    pairs = np.concatenate([x[:5].reshape(5, 8, 8), vae.reconstruct(x[:5]).reshape(5, 8, 8)], axis=1)
    axes[1].imshow(np.concatenate(list(pairs), axis=1), cmap="gray_r")
    axes[1].set_title("inputs (top), reconstructions (bottom)", fontsize=9)
    samples = vae.sample(10, seed=lesson.seed).reshape(2, 5, 8, 8)
    axes[2].imshow(np.concatenate([np.concatenate(list(row), axis=1) for row in samples], axis=0), cmap="gray_r")
    axes[2].set_title("decoded draws z ~ N(0, I)", fontsize=9)
    for ax in axes[1:]:
        ax.axis("off")
    lesson.figure(fig, "vae", "tfdl's VAE on the 8×8 digits: the loss is reconstruction + KL; inputs and their "
                  "reconstructions; new digits decoded from prior samples.")

    lesson.check("tfdl's vae_loss equals BCE summed over pixels + the closed-form KL (relative gap < 1e-4)",
                 gap < 1e-4, f"{gap:.1e}")
    lesson.check("training raises the ELBO: the negative ELBO falls by at least 20%", last < 0.8 * first,
                 f"{first:.1f} -> {last:.1f} nats")
    kl = history["kl"][-1]
    lesson.check("the code carries information about each digit: KL >= 0.5 nats and reconstructions err "
                 "< 0.8x as much as the mean digit", kl >= 0.5 and squared_error < 0.8 * baseline,
                 f"KL {kl:.2f} nats; {squared_error:.2f} vs {baseline:.2f}")


def _nearest_distance(samples, data) -> float:
    """Mean Euclidean distance from each sample to its nearest row of `data`."""
    import numpy as np

    squared = (samples ** 2).sum(1)[:, None] - 2 * samples @ data.T + (data ** 2).sum(1)[None]
    return float(np.sqrt(np.maximum(squared.min(axis=1), 0)).mean())


@atlas_entry(
    37,
    formula=r"\text{AE: } \min\ \lVert x - g(f(x)) \rVert^2 \qquad "
    r"\text{VAE: } \min\ \mathbb{E}_{z \sim \mathcal N(\mu(x), \sigma^2(x))}\big[-\log p(x \mid z)\big] "
    r"+ D_{\mathrm{KL}}\big(\mathcal N(\mu(x), \sigma^2(x))\,\|\,\mathcal N(0, I)\big)",
    see=("tfdl.models.build_autoencoder", "tfdl.models.encoder", "tfdl.models.build_vae", "tfdl.layers.Sampling"),
    configs=("digits_autoencoder",),
)
def vae_vs_autoencoder(lesson: Lesson) -> None:
    """A **traditional autoencoder** maps each input to one point $f(x)$ and learns to map it back;
    its only objective is reconstruction. Nothing says where the codes should lie, so they
    end up wherever is convenient — at an arbitrary scale and offset, in clusters with
    empty space between them. It is a compressor, good for dimensionality reduction,
    denoising and anomaly detection, but not a generator: a code that no training input
    produced (a random point, a point between two codes) decodes to something that need not
    look like data.

    A **VAE** changes three things. The encoder outputs a *distribution*
    $\\mathcal N(\\mu(x), \\sigma^2(x))$ instead of a point, and the decoder is trained on
    *samples* from it, so a whole neighbourhood of codes must decode to $x$; the KL term
    pulls every posterior towards $\\mathcal N(0, I)$, so the codes of all inputs fill one
    known region with no holes; and the model is probabilistic, with a likelihood bound
    (the ELBO) per example. The price is blurrier reconstructions (the loss averages over
    nearby codes, and the KL limits how much the code may say), the gain is a latent space
    one can sample from.

    The example trains tfdl's autoencoder and tfdl's VAE of the same size (8-dimensional
    code, 128-64 layers) on the digits, then decodes the same draws $z \\sim \\mathcal N(0, I)$
    with both decoders and measures how far each result is from the nearest real digit.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.models import AutoencoderConfig, build_autoencoder, encoder

    x, _ = _digits()
    epochs = lesson.budget(10, 60)
    vae, _ = _fit_vae(x, latent_dim=8, epochs=epochs, seed=lesson.seed)
    ae = build_autoencoder(AutoencoderConfig(input_shape=(64,), hidden_units=(128, 64), code_size=8,
                                             output_activation="sigmoid"))
    ae.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy", steps_per_execution=28)
    feed = tf.data.Dataset.from_tensor_slices((x, x)).shuffle(len(x), seed=lesson.seed).repeat().batch(64)
    ae.fit(feed, steps_per_epoch=len(x) // 64, epochs=epochs, shuffle=False, verbose=0)
    code = keras.Input((8,))
    decoded = code
    for name in ("decoder1", "decoder2", "output"):  # the autoencoder's decoder half, applied to any code
        decoded = ae.get_layer(name)(decoded)
    ae_decoder = keras.Model(code, decoded)

    ae_codes = np.asarray(encoder(ae)({"features": x}))  # the input is named, as served models are
    mean, log_var = (np.asarray(t) for t in vae.encode(x))
    vae_codes = mean + np.exp(0.5 * log_var) * np.random.default_rng(lesson.seed).normal(size=mean.shape)
    z = np.random.default_rng(lesson.seed + 1).normal(size=(500, 8)).astype("float32")
    samples = {"autoencoder": np.asarray(ae_decoder(z)), "VAE": vae.sample(500, seed=lesson.seed + 1)}
    spread = {"autoencoder": ae_codes, "VAE": vae_codes}
    rows = []
    for name, model_output in (("autoencoder", ae({"features": x})), ("VAE", vae.reconstruct(x))):
        reconstruction = float(((np.asarray(model_output) - x) ** 2).sum(1).mean())
        codes = spread[name]
        rows.append((name, reconstruction, float(np.abs(codes.mean(0)).mean()), float(codes.std(0).mean()),
                     _nearest_distance(samples[name], x)))
        lesson.number(f"{name}: reconstruction squared error", reconstruction)
        lesson.number(f"{name}: distance of decoded N(0, I) draws to the nearest digit", rows[-1][-1])
    held_out = x[::7]
    others = np.delete(x, np.arange(0, len(x), 7), axis=0)
    real = lesson.number("a real digit's distance to the nearest other digit", _nearest_distance(held_out, others))
    lesson.table("Same size, same data, same draws z ~ N(0, I)",
                 ("model", "reconstruction error", "mean |code mean|", "mean code std",
                  "decoded draw to nearest digit"), rows)

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), gridspec_kw={"width_ratios": [1.2, 1, 1]})
    for name, codes in spread.items():
        axes[0].hist(codes.ravel(), bins=60, density=True, alpha=0.5, label=f"{name} codes")
    grid = np.linspace(-4, 4, 100)
    axes[0].plot(grid, np.exp(-grid ** 2 / 2) / np.sqrt(2 * np.pi), "k", label="prior N(0, 1)")
    axes[0].set(xlabel="code value (all 8 dimensions)", ylabel="density", title="Where the codes lie")
    axes[0].legend(fontsize=8)
    for ax, (name, images) in zip(axes[1:], samples.items()):
        tiles = images[:10].reshape(2, 5, 8, 8)
        ax.imshow(np.concatenate([np.concatenate(list(row), axis=1) for row in tiles], axis=0), cmap="gray_r")
        ax.set_title(f"{name}: decoded z ~ N(0, I)", fontsize=9)
        ax.axis("off")
    lesson.figure(fig, "ae_vs_vae", "The autoencoder's codes lie wherever reconstruction put them, so prior draws "
                  "decode to noise; the VAE's codes fill N(0, I), so the same draws decode to digit-like images.")

    ae_row, vae_row = rows
    lesson.check("the VAE's codes follow the prior (|mean| < 0.25, std within 0.25 of 1); the autoencoder's do not",
                 vae_row[2] < 0.25 and abs(vae_row[3] - 1) < 0.25 and (ae_row[2] > 0.5 or abs(ae_row[3] - 1) > 0.5),
                 f"VAE {vae_row[2]:.2f}, {vae_row[3]:.2f}; autoencoder {ae_row[2]:.2f}, {ae_row[3]:.2f}")
    lesson.check("decoded prior draws lie closer to real digits for the VAE (distance < 0.8x the autoencoder's)",
                 vae_row[4] < 0.8 * ae_row[4], f"{vae_row[4]:.2f} vs {ae_row[4]:.2f} (real digits: {real:.2f})")


@atlas_entry(
    82,
    formula=r"x = G_\theta(z),\ z \sim \mathcal N(0, I);\qquad \text{in 1-D the ideal map is } "
    r"G^*(z) = F_{\text{data}}^{-1}\big(\Phi(z)\big)",
    see=("tfdl.models.GAN", "tfdl.models.build_dcgan", "tfdl.models.build_conditional_gan"),
    configs=("digits_dcgan",),
)
def how_gans_generate(lesson: Lesson) -> None:
    """A trained GAN generates by a single forward pass: draw a noise vector $z$ from the same
    simple distribution used in training (a standard normal), and compute $x = G(z)$. The
    generator is a deterministic function; all the randomness is in $z$, and the network has
    learned to *transport* the noise distribution onto the data distribution — to bend and
    stretch the latent space so that regions of $z$ land on the data's modes in the right
    proportions. Each fresh $z$ gives a new sample, not a stored example, because the
    network outputs a point of a continuous surface it fitted, not a lookup.

    In one dimension the ideal transport is known exactly: push $z$ through the normal CDF
    $\\Phi$ to a uniform, then through the data's inverse CDF (the quantile function). The
    example trains a toy GAN on a two-Gaussian mixture and compares the learned $G$ to that
    map, and checks that the samples are new points: their distance to the nearest training
    example is that of fresh draws from the data distribution, not zero.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    from scipy.stats import norm

    data = _two_bumps(4096, lesson.seed)
    gan = _ToyGAN(data, seed=lesson.seed)
    gan.train(600)  # longer runs keep oscillating around this map, not closer to it

    z = np.linspace(-2.5, 2.5, 201, dtype="float32")[:, None]
    learned = gan.generator(z).numpy()[:, 0]
    reference = _two_bumps(200_000, lesson.seed + 7)[:, 0]
    ideal = np.quantile(reference, norm.cdf(z[:, 0]))
    # A GAN may learn the map or its mirror image: both push N(0, 1) onto the data.
    mirror = np.quantile(reference, norm.cdf(-z[:, 0]))
    gap = lesson.number("mean |G(z) - ideal map| over z in [-2.5, 2.5]",
                        float(min(np.abs(learned - ideal).mean(), np.abs(learned - mirror).mean())))
    samples = gan.sample(4096, seed=lesson.seed + 1)
    training = np.sort(data[:, 0])

    def to_nearest_training_point(points):  # median distance, by binary search in the sorted training set
        i = np.clip(np.searchsorted(training, points), 1, len(training) - 1)
        return float(np.median(np.minimum(np.abs(points - training[i - 1]), np.abs(points - training[i]))))

    generated_gap = lesson.number("G(z): median distance to the nearest training point",
                                  to_nearest_training_point(samples[:, 0]))
    fresh_gap = lesson.number("fresh data: median distance to the nearest training point",
                              to_nearest_training_point(_two_bumps(4096, lesson.seed + 9)[:, 0]))
    twice = gan.generator(z).numpy()[:, 0]
    spread = lesson.number("data standard deviation", float(data.std()))

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    axes[0].plot(z[:, 0], ideal, "k", label=r"ideal $F^{-1}(\Phi(z))$")
    axes[0].plot(z[:, 0], mirror, "k:", label=r"its mirror $F^{-1}(\Phi(-z))$")
    axes[0].plot(z[:, 0], learned, "C1", linewidth=2, label="learned G(z)")
    axes[0].set(xlabel="noise z", ylabel="sample x = G(z)", title="The generator is a learned transport map")
    axes[0].legend(fontsize=8)
    bins = np.linspace(-4.5, 4.5, 61)
    axes[1].hist(data[:, 0], bins, density=True, alpha=0.4, label="training data")
    axes[1].hist(samples[:, 0], bins, density=True, alpha=0.5, label="G(z), z ~ N(0, 1)")
    axes[1].set(xlabel="x", ylabel="density", title="New samples")
    axes[1].legend(fontsize=8)
    lesson.figure(fig, "transport", "Left: the trained generator against the exact map that turns N(0, 1) into "
                  "the data; the flat steps send most of z to the two modes, the steep part crosses the gap. "
                  "Right: samples from fresh noise.")

    lesson.check("G(z) is close to the ideal transport map (mean gap < 0.25 data std)", gap < 0.25 * spread,
                 f"{gap:.3f} vs std {spread:.2f}")
    lesson.check("generation is deterministic in z: the same z gives the same x", np.array_equal(learned, twice))
    lesson.check("the samples are new points, as far from the training set as fresh data is (ratio > 0.5), "
                 "not copies of it (ratio 0)", generated_gap > 0.5 * fresh_gap,
                 f"{generated_gap:.2e} vs {fresh_gap:.2e}")


@atlas_entry(
    83,
    formula=r"D^*(x) = \frac{p_{\text{data}}(x)}{p_{\text{data}}(x) + p_g(x)},\qquad "
    r"\max_D V(D, G) = -\log 4 + 2\,\mathrm{JSD}\big(p_{\text{data}}\,\|\,p_g\big)",
    see=("tfdl.models.GAN", "tfdl.models.GANConfig"),
    configs=("digits_dcgan",),
)
def discriminator_role(lesson: Lesson) -> None:
    """The discriminator is the GAN's learned loss function. Trained as a binary classifier
    between data and the generator's current samples, it converges (with enough capacity)
    to the Bayes-optimal classifier $D^*(x) = p_{\\text{data}}(x) / (p_{\\text{data}}(x) +
    p_g(x))$: it is, in effect, a density-ratio estimator. It says, for each point, how much
    more likely the data is than the generator to have put it there — which no one could
    write down by hand for images.

    That gives it two jobs. Its *value* measures the gap between the distributions: plugging
    $D^*$ into the GAN objective gives $-\\log 4 + 2\\,\\mathrm{JSD}(p_{\\text{data}}\\,\\|\\,p_g)$, so
    the better $D$ separates the two, the further apart they are, and the generator's
    minimization of it is a minimization of the Jensen–Shannon divergence. Its *gradient*
    $\\nabla_x D(x)$ at the generated samples is the only information the generator receives:
    it points from where the generator over-produces towards where the data is
    under-covered. Questions 84 and 86 show what goes wrong when that gradient vanishes.

    The example fixes $p_g$ to a known Gaussian, trains a discriminator between it and a
    two-Gaussian mixture, and compares the trained $D$ with the formula for $D^*$ and its
    loss with the Jensen–Shannon value.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(lesson.seed)
    n = 8192
    real = _two_bumps(n, lesson.seed)
    fake = (1.5 * rng.normal(size=(n, 1))).astype("float32")  # a fixed generator: p_g = N(0, 1.5^2)
    x = np.concatenate([real, fake])
    y = np.concatenate([np.ones((n, 1)), np.zeros((n, 1))]).astype("float32")
    discriminator = _mlp(1, 1, "discriminator")
    discriminator.compile(keras.optimizers.Adam(3e-3), keras.losses.BinaryCrossentropy(from_logits=True),
                          steps_per_execution=50)
    feed = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(2 * n, seed=lesson.seed).repeat().batch(256)
    discriminator.fit(feed, steps_per_epoch=lesson.budget(600, 3000), epochs=1, shuffle=False, verbose=0)

    grid = np.linspace(-4.5, 4.5, 301)
    p_data = _two_bumps_density(grid)
    p_g = np.exp(-0.5 * (grid / 1.5) ** 2) / (1.5 * np.sqrt(2 * np.pi))
    optimal = p_data / (p_data + p_g)
    learned = 1 / (1 + np.exp(-discriminator(grid[:, None].astype("float32")).numpy()[:, 0]))
    where = (p_data + p_g) > 0.05  # where there are samples to learn from
    gap = lesson.number("mean |D(x) - D*(x)| where p_data + p_g > 0.05", float(np.abs(learned - optimal)[where].mean()))

    m = 0.5 * (p_data + p_g)
    step = grid[1] - grid[0]
    jsd = 0.5 * np.sum(p_data * np.log(p_data / m) + p_g * np.log(p_g / m)) * step
    value_by_formula = lesson.number("max_D V = -log 4 + 2 JSD (numerical integral)", float(-np.log(4) + 2 * jsd))
    test_real = _two_bumps(n, lesson.seed + 5)
    test_fake = (1.5 * np.random.default_rng(lesson.seed + 5).normal(size=(n, 1))).astype("float32")
    log_d = lambda v: -np.logaddexp(0, -discriminator(v).numpy())  # noqa: E731  log sigmoid(logit)
    log_1md = lambda v: -np.logaddexp(0, discriminator(v).numpy())  # noqa: E731  log(1 - sigmoid(logit))
    value = lesson.number("V(D, G) of the trained D on fresh samples", float(log_d(test_real).mean()
                                                                             + log_1md(test_fake).mean()))
    lesson.number("JSD(p_data || p_g) (nats)", float(jsd))

    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(grid, p_data, "k", label=r"$p_{data}$: two Gaussians")
    ax.plot(grid, p_g, "grey", label=r"$p_g$: N(0, 1.5²), fixed")
    ax.plot(grid, optimal, "C0", linewidth=3, alpha=0.5, label=r"$D^*(x) = p_{data}/(p_{data}+p_g)$")
    ax.plot(grid, learned, "C3--", label="trained D(x)")
    ax.set(xlabel="x", ylabel="density / probability", title="A trained discriminator is the optimal one")
    ax.legend(fontsize=8)
    lesson.figure(fig, "optimal_discriminator", "A discriminator trained between a fixed generator and the data "
                  "recovers the density ratio D* wherever there are samples.")

    lesson.check("the trained D matches D* = p_data / (p_data + p_g) (mean gap < 0.05)", gap < 0.05, f"{gap:.3f}")
    lesson.check("its value V(D, G) equals -log 4 + 2 JSD within 0.05 nats", abs(value - value_by_formula) < 0.05,
                 f"{value:.3f} vs {value_by_formula:.3f}")


@atlas_entry(
    84,
    formula=r"\min_x \max_y\ xy:\ \ (x, y) \leftarrow (x - \eta y,\ y + \eta x) \Rightarrow "
    r"\lVert (x, y) \rVert \leftarrow \sqrt{1 + \eta^2}\,\lVert (x, y) \rVert;\qquad "
    r"\frac{\partial \log(1 - \sigma(\ell))}{\partial \ell} = -\sigma(\ell) \xrightarrow[\ell \to -\infty]{} 0",
    see=("tfdl.models.GAN", "tfdl.models.WGAN"),
    configs=("digits_dcgan", "digits_wgan_gp"),
)
def gan_training_challenges(lesson: Lesson) -> None:
    """Training a GAN is finding a saddle point of a two-player game, not the minimum of one
    loss, and most of its difficulties follow from that.

    - **Non-convergence.** Gradient steps for both players need not approach the equilibrium:
      on the simplest game, $\\min_x\\max_y xy$, simultaneous steps spiral outwards and
      alternating steps circle for ever. Real GANs oscillate the same way — losses that do
      not fall, samples that keep changing — and no loss curve tells when to stop.
    - **Vanishing generator gradients.** Early on the discriminator wins easily; with the
      original loss $\\log(1 - D(G(z)))$ the generator's gradient is $\\sigma(\\ell)$ for logit
      $\\ell$, which is almost zero exactly when $D$ confidently rejects the samples. The
      non-saturating loss $-\\log D(G(z))$ (gradient $1 - \\sigma(\\ell)$) and the Wasserstein
      loss (question 86) fix this.
    - **Mode collapse** (question 85): the generator covers a few modes of the data.
    - **Balance and sensitivity**: learning rates, the ratio of $D$ to $G$ steps,
      architecture and normalization must suit each other; a discriminator that is too
      strong starves the generator, one too weak misleads it. Remedies include Adam with
      $\\beta_1 = 0.5$, spectral normalization, gradient penalties, label smoothing and
      two-timescale learning rates.
    - **Evaluation**: there is no likelihood; quality and diversity are measured indirectly
      (FID; the class histogram of generated digits that tfdl's GAN runs report).

    The example measures the first two: the bilinear game under both update orders, and the
    generator's gradient under the two losses against a confident discriminator.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    eta, steps = 0.1, lesson.budget(200, 600)
    paths = {}
    for order in ("simultaneous", "alternating"):
        x, y, path = 1.0, 0.0, [(1.0, 0.0)]
        for _ in range(steps):  # x minimizes xy, y maximizes it
            if order == "simultaneous":
                x, y = x - eta * y, y + eta * x
            else:
                x = x - eta * y
                y = y + eta * x
            path.append((x, y))
        paths[order] = np.array(path)
    radius = {order: lesson.number(f"{order} steps: distance from the equilibrium after {steps} steps",
                                   float(np.linalg.norm(path[-1]))) for order, path in paths.items()}
    expected = lesson.number("simultaneous, by the formula (1 + eta^2)^(steps/2)", (1 + eta ** 2) ** (steps / 2))

    data = _two_bumps(4096, lesson.seed)
    gan = _ToyGAN(data, seed=lesson.seed)
    gan.train(lesson.budget(200, 600), d=1, g=0)  # early training: D learns to reject G's samples
    z = np.random.default_rng(lesson.seed).normal(size=(1024, 1)).astype("float32")
    norms = {}
    for name in ("saturating log(1 - D(G(z)))", "non-saturating -log D(G(z))"):
        with tf.GradientTape() as tape:
            logits = gan.discriminator(gan.generator(z))
            loss = (-tf.reduce_mean(tf.nn.softplus(logits)) if name.startswith("saturating")  # log(1 - sigmoid)
                    else tf.reduce_mean(tf.nn.softplus(-logits)))
        grads = tape.gradient(loss, gan.generator.trainable_variables)
        norms[name] = lesson.number(f"generator gradient norm, {name}",
                                    float(tf.linalg.global_norm(grads)))
    mean_d = lesson.number("mean D(G(z)) of the confident discriminator", float(gan.prob_real(gan.generator(z)).mean()))

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for order, path in paths.items():
        axes[0].plot(path[:, 0], path[:, 1], label=f"{order} steps")
    axes[0].plot([0], [0], "k*", markersize=10, label="equilibrium")
    axes[0].set(xlabel="x (minimizes xy)", ylabel="y (maximizes xy)", title=r"Gradient play on $\min_x \max_y xy$",
                aspect="equal")
    axes[0].legend(fontsize=8)
    axes[1].bar(list(norms), list(norms.values()), color=["C3", "C2"])
    axes[1].set_yscale("log")
    axes[1].set(ylabel="gradient norm (log)", title=f"Generator gradient when D(G(z)) ≈ {mean_d:.3f}")
    axes[1].tick_params(axis="x", labelsize=8)
    lesson.figure(fig, "challenges", "Left: simultaneous gradient steps spiral away from the saddle point, "
                  "alternating ones circle it. Right: against a confident discriminator the original generator "
                  "loss gives almost no gradient; the non-saturating one does.")

    lesson.check("simultaneous steps diverge from the equilibrium as (1 + eta^2)^(t/2)",
                 abs(radius["simultaneous"] - expected) < 1e-6 * expected and radius["simultaneous"] > 2,
                 f"{radius['simultaneous']:.3f} vs {expected:.3f}")
    lesson.check("alternating steps do not converge either (still > 0.5 of the start's distance)",
                 radius["alternating"] > 0.5, f"{radius['alternating']:.3f}")
    saturating, non_saturating = norms.values()
    lesson.check("against a confident D, the saturating loss's gradient is > 20x smaller",
                 non_saturating > 20 * saturating, f"{saturating:.2e} vs {non_saturating:.2e}")


def _fit_critic(real, fake, *, steps: int, penalty: float = 10.0, clip: float | None = None, seed: int = 0):
    """A critic MLP trained on `tfdl.losses.critic_loss` (+ gradient penalty, or weight clipping) between two fixed samples."""
    import keras
    import tensorflow as tf

    from tfdl.losses import critic_loss, gradient_penalty

    critic = _mlp(real.shape[1], 1, "critic")
    optimizer = keras.optimizers.Adam(1e-3, beta_1=0.5, beta_2=0.9)
    optimizer.build(critic.trainable_variables)
    seeds = keras.random.SeedGenerator(seed)
    real, fake = tf.constant(real), tf.constant(fake)

    @tf.function
    def train(steps):
        for _ in tf.range(steps):
            pick = tf.random.uniform((256,), 0, real.shape[0], tf.int32)
            r, f = tf.gather(real, pick), tf.gather(fake, pick)
            with tf.GradientTape() as tape:
                loss = critic_loss(critic(r), critic(f))
                if penalty:
                    loss += penalty * gradient_penalty(critic, r, f, seed=seeds)
            optimizer.apply(tape.gradient(loss, critic.trainable_variables), critic.trainable_variables)
            if clip is not None:
                for weight in critic.trainable_variables:
                    weight.assign(tf.clip_by_value(weight, -clip, clip))

    train(tf.constant(steps))
    return critic


@atlas_entry(
    86,
    formula=r"W_1(p, q) = \inf_{\gamma \in \Pi(p, q)} \mathbb{E}_{(x, y) \sim \gamma} \lVert x - y \rVert "
    r"= \sup_{\lVert f \rVert_L \le 1} \mathbb{E}_{x \sim p}[f(x)] - \mathbb{E}_{y \sim q}[f(y)]",
    see=("tfdl.models.WGAN", "tfdl.models.build_wgan", "tfdl.models.WGANConfig", "tfdl.losses.critic_loss",
         "tfdl.losses.generator_loss"),
    configs=("digits_wgan", "digits_wgan_gp"),
)
def wasserstein_gan(lesson: Lesson) -> None:
    """A **Wasserstein GAN** replaces the Jensen–Shannon divergence that the original GAN
    minimizes with the **Wasserstein-1** (earth mover's) distance: the least average distance
    mass must travel to turn one distribution into the other. Its dual form (Kantorovich–
    Rubinstein) is a supremum over 1-Lipschitz functions $f$ of the gap between their means
    under the two distributions, so the discriminator becomes a **critic** $f$: it outputs an
    unbounded score instead of a probability, the critic maximizes
    $\\mathbb{E}[f(\\text{real})] - \\mathbb{E}[f(\\text{fake})]$ (`tfdl.losses.critic_loss` is its
    negative), and the generator maximizes $\\mathbb{E}[f(G(z))]$ (`generator_loss`).

    Why it helps: when the two distributions do not overlap — usual early in training, and
    for images on thin manifolds — the JS divergence is the constant $\\log 2$ however far
    apart they are, so the optimal discriminator saturates and its gradient says nothing
    about which way to move. $W_1$ grows with the distance, and a Lipschitz critic has a
    useful gradient everywhere. Two consequences: the critic can be trained to optimality
    ($n_{\\text{critic}}$ steps per generator step, 5 in tfdl's `WGAN`) instead of being held
    back, and the critic's loss is a meaningful number that falls as samples improve. The
    Lipschitz constraint must be enforced: by clipping the weights (the original paper) or,
    better, by a gradient penalty (question 87).

    The example takes the paper's case: a vertical segment of points at $x = 0$ against the
    same segment moved to $x = \\theta$. It computes both divergences, then trains a WGAN-GP
    critic for each $\\theta$ and reads off its estimate.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(lesson.seed)
    n = 2048
    segment = np.stack([np.zeros(n), rng.uniform(size=n)], axis=1).astype("float32")  # real: {0} x U[0, 1]
    thetas = lesson.budget((0.5, 1.5, 3.0), (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0))
    bins = np.linspace(-1, 5, 601)
    rows = []
    for theta in thetas:
        moved = segment + np.array([theta, 0.0], "float32")  # generated: {theta} x U[0, 1]
        p = np.histogram(segment[:, 0], bins)[0] / n
        q = np.histogram(moved[:, 0], bins)[0] / n
        m = 0.5 * (p + q)
        js = 0.5 * np.sum(p[p > 0] * np.log(p[p > 0] / m[p > 0])) + 0.5 * np.sum(q[q > 0] * np.log(q[q > 0] / m[q > 0]))
        w1 = wasserstein_distance(segment[:, 0], moved[:, 0])  # the y coordinates match exactly
        critic = _fit_critic(segment, moved, steps=lesson.budget(300, 1500), seed=lesson.seed)
        estimate = float(critic(segment).numpy().mean() - critic(moved).numpy().mean())
        rows.append((theta, js, w1, estimate))
    lesson.table("Two segments theta apart", ("theta", "JS divergence (nats)", "W1 (exact)", "WGAN-GP critic estimate"),
                 rows)
    theta, js, w1, estimate = (np.array(c) for c in zip(*rows))
    for t, e in zip(theta, estimate):
        lesson.number(f"critic estimate of W1 at theta = {t}", float(e))

    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(theta, js, "o-", label="JS divergence")
    ax.plot(theta, w1, "s-", label=r"$W_1$ (exact)")
    ax.plot(theta, estimate, "^--", label=r"WGAN-GP critic: $E[f(real)] - E[f(fake)]$")
    ax.axhline(np.log(2), color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel=r"distance $\theta$ between the two segments", ylabel="divergence",
           title="Disjoint distributions: JS is stuck at log 2, W1 grows")
    ax.legend(fontsize=8)
    lesson.figure(fig, "js_vs_w1", "JS gives the same value whatever the distance, so its gradient is zero; "
                  "the Wasserstein distance, and the critic's estimate of it, grow with the distance.")

    lesson.check("JS divergence is log 2 for every theta (disjoint supports)", np.allclose(js, np.log(2), atol=1e-6),
                 f"{js.min():.4f}..{js.max():.4f}")
    lesson.check("W1 equals theta", np.allclose(w1, theta, atol=1e-5), f"{w1.round(4).tolist()}")
    # The penalty is soft: a critic of slope s gains theta * s and pays 10 (s - 1)^2, so s = 1 + theta / 20.
    soft = theta * (1 + theta / 20)
    lesson.check("the WGAN-GP critic's estimate tracks W1: it is within 5% of W1 x (1 + W1 / 2λ), "
                 "the soft penalty's optimum", np.all(np.abs(estimate - soft) < 0.05 * soft),
                 f"{estimate.round(3).tolist()}")


@atlas_entry(
    87,
    formula=r"L_{\text{critic}} = \mathbb{E}\big[f(\tilde x)\big] - \mathbb{E}\big[f(x)\big] "
    r"+ \lambda\, \mathbb{E}_{\hat x}\Big[\big(\lVert \nabla_{\hat x} f(\hat x) \rVert_2 - 1\big)^2\Big],\quad "
    r"\hat x = \epsilon x + (1 - \epsilon)\tilde x,\ \epsilon \sim U(0, 1)",
    see=("tfdl.losses.gradient_penalty", "tfdl.losses.critic_loss", "tfdl.models.WGAN", "tfdl.models.WGANConfig"),
    configs=("digits_wgan_gp", "digits_wgan"),
)
def gradient_penalty_purpose(lesson: Lesson) -> None:
    """The Wasserstein critic must be **1-Lipschitz** (its slope nowhere steeper than 1) for
    $\\mathbb{E}[f(\\text{real})] - \\mathbb{E}[f(\\text{fake})]$ to estimate the Wasserstein distance;
    without a constraint the critic wins by scaling its output, the gap grows without bound
    and says nothing. The original WGAN clipped every weight to $[-c, c]$, which does bound
    the slope but crudely: the critic ends with gradients far below 1, biased towards very
    simple functions, and training is slow or unstable depending on $c$.

    The **gradient penalty** (WGAN-GP) enforces the constraint softly where it matters. An
    optimal critic has gradient norm exactly 1 almost everywhere on the straight lines
    between coupled real and generated points, so the penalty samples points $\\hat x$ on
    random lines between a real and a generated example and adds
    $\\lambda(\\lVert\\nabla f(\\hat x)\\rVert - 1)^2$ to the critic's loss ($\\lambda = 10$). It
    needs the gradient of the critic with respect to its *input* inside the training step
    (a second derivative for the weight update), and the critic must score each example
    independently — no batch normalization (tfdl's `WGANConfig` refuses it). The constraint is
    soft: on a line of length $d$ the critic gains $d\,s$ from slope $s$ and pays
    $\lambda(s - 1)^2$, so it settles at $s = 1 + d / 2\lambda$, slightly above 1.

    The example checks `tfdl.losses.gradient_penalty` against the formula computed by hand,
    then trains three critics between the same two point clouds — no constraint, weight
    clipping, and the penalty — and measures the gradient norm at the interpolates.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.losses import gradient_penalty

    rng = np.random.default_rng(lesson.seed)
    real = (rng.normal(size=(2048, 2)) * 0.3 + [2.0, 0.0]).astype("float32")
    fake = (rng.normal(size=(2048, 2)) * 0.3 - [2.0, 0.0]).astype("float32")

    # 1. The penalty against its formula, for a critic f(x) = v . tanh(Wx + b) + c with a hand-written gradient.
    critic = keras.Sequential([keras.Input((2,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(1)])
    W, b, v, _ = (w.astype("float64") for w in critic.get_weights())
    batch_real, batch_fake = real[:256], fake[:256]
    eps = np.asarray(keras.random.uniform((256, 1), seed=lesson.seed), "float64")  # the draw the penalty makes
    x_hat = eps * batch_real + (1 - eps) * batch_fake
    gradient = ((1 - np.tanh(x_hat @ W + b) ** 2) * v[:, 0]) @ W.T  # d f / d x_hat
    by_formula = np.mean((np.linalg.norm(gradient, axis=1) - 1) ** 2)
    by_tfdl = float(gradient_penalty(critic, batch_real, batch_fake, seed=lesson.seed))
    lesson.number("gradient penalty by the formula (numpy)", float(by_formula))
    lesson.number("tfdl.losses.gradient_penalty", by_tfdl)

    # 2. What the penalty does to a trained critic.
    def norms_at_interpolates(model):
        t = rng.uniform(size=(2048, 1)).astype("float32")
        points = tf.constant(t * real + (1 - t) * fake)
        with tf.GradientTape() as tape:
            tape.watch(points)
            scores = model(points)
        return np.linalg.norm(tape.gradient(scores, points).numpy(), axis=1)

    steps = lesson.budget(300, 1500)
    critics = {
        "no constraint": _fit_critic(real, fake, steps=steps, penalty=0.0, seed=lesson.seed),
        "weight clipping (c = 0.01)": _fit_critic(real, fake, steps=steps, penalty=0.0, clip=0.01, seed=lesson.seed),
        "gradient penalty (λ = 10)": _fit_critic(real, fake, steps=steps, penalty=10.0, seed=lesson.seed),
    }
    norms = {name: norms_at_interpolates(model) for name, model in critics.items()}
    rows = []
    for name, values in norms.items():
        gap = float(critics[name](real).numpy().mean() - critics[name](fake).numpy().mean())
        rows.append((name, float(values.mean()), float(values.std()), gap))
        lesson.number(f"{name}: mean gradient norm at interpolates", float(values.mean()))
    true_w1 = lesson.number("W1 between the clouds (the same shape, means 4 apart)", 4.0)
    lesson.table("Critics trained between two point clouds 4 apart",
                 ("critic", "mean ||grad f||", "std ||grad f||", "E f(real) - E f(fake)"), rows)

    fig, ax = plt.subplots(figsize=(7, 3.6))
    for name, values in norms.items():
        ax.hist(values, bins=np.geomspace(1e-3, max(100, values.max()), 60), alpha=0.6, label=name)
    ax.axvline(1.0, color="k", linestyle="--", linewidth=1, label="norm 1 (1-Lipschitz)")
    ax.set_xscale("log")
    ax.set(xlabel=r"$\|\nabla_{\hat x} f(\hat x)\|$ at points between real and fake", ylabel="count",
           title="The critic's slope under each constraint")
    ax.legend(fontsize=8)
    lesson.figure(fig, "gradient_norms", "Gradient norms of three trained critics on the lines between real and "
                  "generated points: unconstrained they blow up, clipped they are far below 1, penalized they sit at 1.")

    free, clipped, penalized = rows
    lesson.check("tfdl's gradient_penalty equals mean((||grad f(x_hat)|| - 1)^2) computed by hand (rel. gap < 1e-4)",
                 abs(by_tfdl - by_formula) < 1e-4 * max(by_formula, 1e-6), f"{by_tfdl:.6f} vs {by_formula:.6f}")
    # A critic of slope s along the line gains 4 s and pays 10 (s - 1)^2: the penalized optimum is s = 1 + 4 / 20.
    soft_optimum = lesson.number("slope that maximizes 4 s - 10 (s - 1)^2", 1 + true_w1 / (2 * 10.0))
    lesson.check("with the penalty the gradient norm sits at the soft constraint's optimum 1 + W1 / (2 λ) = 1.2 "
                 "(within 0.1), not 50x off", abs(penalized[1] - soft_optimum) < 0.1, f"{penalized[1]:.3f}")
    lesson.check("without a constraint it exceeds 3, and its score gap overshoots W1",
                 free[1] > 3 and free[3] > 1.5 * true_w1, f"norm {free[1]:.2f}, gap {free[3]:.2f}")
    lesson.check("with weight clipping it stays below 0.3", clipped[1] < 0.3, f"{clipped[1]:.3f}")


@atlas_entry(
    90,
    formula=r"z = \mu + \sigma \odot \epsilon,\ \epsilon \sim \mathcal N(0, I)\ \Rightarrow\ "
    r"\nabla_\mu \mathbb{E}_z[f(z)] = \mathbb{E}_\epsilon\big[f'(\mu + \sigma\epsilon)\big],\quad "
    r"\frac{\partial z}{\partial \mu} = 1,\ \frac{\partial z}{\partial \log\sigma^2} = \tfrac12 \sigma \epsilon",
    see=("tfdl.layers.Sampling", "tfdl.models.VAE", "tfdl.losses.vae_loss"),
)
def reparameterization_trick(lesson: Lesson) -> None:
    """A VAE's loss contains an expectation over a *sample* $z \\sim \\mathcal N(\\mu, \\sigma^2)$
    whose parameters the encoder outputs. Drawing $z$ directly is a random node: there is no
    derivative of "a random draw" with respect to $\\mu$ and $\\sigma$, so backpropagation stops
    there and the encoder gets no gradient from the reconstruction term.

    The **reparameterization trick** moves the randomness out of the way: draw
    $\\epsilon \\sim \\mathcal N(0, I)$, which depends on nothing that is learned, and compute
    $z = \\mu + \\sigma \\odot \\epsilon$ — a deterministic, differentiable function of $\\mu$,
    $\\sigma$ and the noise, with the same distribution as before. Gradients now flow through
    $z$ to the encoder ($\\partial z / \\partial \\mu = 1$, $\\partial z / \\partial \\sigma = \\epsilon$),
    and a single sample gives an unbiased estimate of the gradient of the expectation.
    tfdl's `Sampling` layer computes it with $\\sigma = \\exp(\\tfrac12 \\log\\sigma^2)$, so the
    encoder's log-variance head is unconstrained.

    The alternative that needs no trick, the score-function (REINFORCE) estimator
    $f(z)\\,\\nabla_\\mu \\log q(z)$, is also unbiased but far noisier; the example measures both,
    and checks with `tf.GradientTape` that gradients reach $\\mu$ and $\\log\\sigma^2$ through the
    layer with the values the formula gives, and that its samples have the asked mean and
    variance.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from tfdl.layers import Sampling

    mean = tf.Variable([[1.0, -2.0, 0.5]])
    log_var = tf.Variable([[0.0, np.log(0.25), np.log(4.0)]], dtype="float32")
    sampling = Sampling(seed=lesson.seed)
    n = lesson.budget(20_000, 200_000)
    with tf.GradientTape(persistent=True) as tape:
        z = sampling([tf.repeat(mean, n, axis=0), tf.repeat(log_var, n, axis=0)])
        total = tf.reduce_sum(z)
    d_mean, d_log_var = tape.gradient(total, mean), tape.gradient(total, log_var)
    sigma = np.exp(0.5 * log_var.numpy()[0])
    eps = (z.numpy() - mean.numpy()) / sigma  # the noise the layer drew
    rows = [(j, mean.numpy()[0, j], float(z.numpy()[:, j].mean()), sigma[j] ** 2, float(z.numpy()[:, j].var()))
            for j in range(3)]
    lesson.table("Sampling: asked and drawn statistics", ("dimension", "mu", "sample mean", "sigma²", "sample variance"),
                 rows)
    expected_d_log_var = 0.5 * sigma * eps.sum(axis=0)
    lesson.number("d sum(z) / d mu (should be n per dimension)", float(d_mean.numpy().mean()))
    with tf.GradientTape() as tape:  # drawing z with numpy: no path from z back to mu
        z_drawn = tf.constant(np.random.default_rng(lesson.seed).normal(mean.numpy(), sigma, size=(n, 3)), "float32")
        blocked = tf.reduce_sum(z_drawn)
    no_path = tape.gradient(blocked, mean)

    # Two unbiased estimators of d/dmu E[z^2] = 2 mu, from one sample each.
    mu, s = 1.0, 1.0
    e = np.random.default_rng(lesson.seed).normal(size=n)
    zs = mu + s * e
    pathwise = 2 * zs  # f'(mu + s eps)
    score = zs ** 2 * (zs - mu) / s ** 2  # f(z) d/dmu log q(z)
    variance = {"reparameterization (pathwise)": float(pathwise.var()), "score function (REINFORCE)": float(score.var())}
    for name, value in variance.items():
        lesson.number(f"variance of the one-sample gradient estimate, {name}", value)
    means = {"pathwise": float(pathwise.mean()), "score": float(score.mean())}

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    grid = np.linspace(-6, 8, 300)
    for j in range(3):
        axes[0].hist(z.numpy()[:, j], bins=80, density=True, alpha=0.4, label=f"z_{j}: μ={rows[j][1]:.1f}, σ²={rows[j][3]:.2f}")
        axes[0].plot(grid, np.exp(-0.5 * ((grid - rows[j][1]) / sigma[j]) ** 2) / (sigma[j] * np.sqrt(2 * np.pi)), "k",
                     linewidth=0.8)
    axes[0].set(xlabel="z = μ + σ ε", ylabel="density", title="Samples from the Sampling layer")
    axes[0].legend(fontsize=7)
    bins = np.linspace(-15, 20, 100)
    axes[1].hist(score, bins, density=True, alpha=0.5, label=f"score function, var {variance['score function (REINFORCE)']:.0f}")
    axes[1].hist(pathwise, bins, density=True, alpha=0.5, label=f"reparameterized, var {variance['reparameterization (pathwise)']:.0f}")
    axes[1].axvline(2 * mu, color="k", linestyle="--", label="true gradient 2μ")
    axes[1].set(xlabel=r"one-sample estimate of $\partial_\mu E[z^2]$", ylabel="density",
                title="Same mean, different noise")
    axes[1].legend(fontsize=7)
    lesson.figure(fig, "reparameterization", "Left: z = μ + σε has the asked distribution. Right: the gradient "
                  "estimate through z is far less noisy than the score-function estimate of the same gradient.")

    lesson.check("samples have the asked mean and variance (within 3%, or 0.03 for means)",
                 all(abs(r[2] - r[1]) < 0.03 * max(1, sigma[r[0]] * 2) and abs(r[4] - r[3]) < 0.03 * r[3] for r in rows),
                 str([(round(r[2], 3), round(r[4], 3)) for r in rows]))
    lesson.check("gradients flow through the layer: d z/d mu = 1 and d z/d log var = sigma eps / 2, per the formula",
                 d_mean is not None and np.allclose(d_mean.numpy(), n)
                 and np.allclose(d_log_var.numpy()[0], expected_d_log_var, rtol=1e-3, atol=1e-2),
                 f"{d_log_var.numpy()[0].round(2).tolist()} vs {expected_d_log_var.round(2).tolist()}")
    lesson.check("a sample drawn outside the graph gives no gradient at all (None)", no_path is None)
    lesson.check("both estimators are unbiased (mean within 0.1 of 2 mu) but the reparameterized one has "
                 "< 1/5 of the variance", abs(means["pathwise"] - 2) < 0.1 and abs(means["score"] - 2) < 0.3
                 and variance["reparameterization (pathwise)"] < variance["score function (REINFORCE)"] / 5,
                 f"means {means['pathwise']:.2f}, {means['score']:.2f}; variances {variance}")


@atlas_entry(
    89,
    formula=r"q_\phi(z) = \frac1N \sum_{i=1}^N q_\phi(z \mid x_i) \ \approx\ p(z) = \mathcal N(0, I),\qquad "
    r"x_{\text{new}} = \operatorname{decoder}(z),\ z \sim \mathcal N(0, I)",
    see=("tfdl.models.VAE", "tfdl.models.build_vae", "tfdl.models.plot_vae", "tfdl.layers.Sampling"),
)
def vae_latent_space(lesson: Lesson) -> None:
    """The latent space is where a VAE keeps its description of the data: each input is
    encoded as a small Gaussian cloud of codes, and the decoder turns any code into an
    output. Its role follows from the two terms of the loss. Reconstruction makes codes
    *informative*: inputs that look alike must get nearby codes, so the axes come to encode
    the main factors of variation (for digits: which digit, slant, thickness), learned
    without labels. The KL term makes the space *regular*: every posterior is pulled
    towards $\\mathcal N(0, I)$, so together the codes of the training set fill the prior's
    region densely, without gaps or far-flung islands.

    Regularity is what makes the space usable: a draw from the prior lands among codes the
    decoder has learned, so it decodes to a plausible new sample (generation); a straight
    line between two codes decodes to a gradual morph (interpolation); arithmetic and
    clustering on codes act on the factors they encode (representation). With a 2-D latent
    space, as here, the whole space can be drawn.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    x, labels = _digits()
    vae, _ = _fit_vae(x, latent_dim=2, epochs=lesson.budget(12, 80), seed=lesson.seed)
    mean = np.asarray(vae.encode(x)[0])

    train, test = np.arange(len(x)) % 5 != 0, np.arange(len(x)) % 5 == 0
    distance = ((mean[test][:, None] - mean[train][None]) ** 2).sum(-1)
    nearest = np.argsort(distance, axis=1)[:, :5]
    votes = labels[train][nearest]
    predicted = np.array([np.bincount(row, minlength=10).argmax() for row in votes])
    knn = lesson.number("5-NN digit accuracy from the 2-D code (chance 0.1)", float((predicted == labels[test]).mean()))
    mean_log_var = np.asarray(vae.encode(x)[1])
    codes = mean + np.exp(0.5 * mean_log_var) * np.random.default_rng(lesson.seed).normal(size=mean.shape)
    centre = lesson.number("aggregate code: mean |mean| over the 2 axes", float(np.abs(codes.mean(0)).mean()))
    spread = lesson.number("aggregate code: mean std over the 2 axes", float(codes.std(0).mean()))

    path = vae.interpolate(x[0], x[1], steps=12).reshape(12, 64)
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    jump = lesson.number("largest step along the interpolation / distance of its ends",
                         float(steps.max() / np.linalg.norm(path[-1] - path[0])))

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    points = axes[0].scatter(mean[:, 0], mean[:, 1], c=labels, cmap="tab10", s=4)
    fig.colorbar(points, ax=axes[0], ticks=range(10), label="digit (not seen in training)")
    axes[0].set(xlabel="$z_1$", ylabel="$z_2$", title="Posterior means of all digits")
    side = 12
    axis = np.linspace(-2.2, 2.2, side, dtype="float32")
    grid = np.stack(np.meshgrid(axis, axis[::-1]), -1).reshape(-1, 2)
    tiles = np.asarray(vae.decode(grid)).reshape(side, side, 8, 8)
    axes[1].imshow(np.concatenate([np.concatenate(list(row), axis=1) for row in tiles], axis=0), cmap="gray_r",
                   extent=(-2.2, 2.2, -2.2, 2.2))
    axes[1].set(xlabel="$z_1$", ylabel="$z_2$", title="Decoder output across the prior's range")
    lesson.figure(fig, "latent_space", "A 2-D VAE latent space on the digits: codes cluster by digit though no "
                  "label was used, fill the region of N(0, I), and every point decodes to a digit-like image.")

    lesson.check("similar digits get nearby codes: 5-NN accuracy from the 2-D code >= 0.5 (chance 0.1)", knn >= 0.5,
                 f"{knn:.3f}")
    lesson.check("the codes fill the prior: aggregate mean within 0.25 of 0, std within 0.25 of 1",
                 centre < 0.25 and abs(spread - 1) < 0.25, f"mean {centre:.3f}, std {spread:.3f}")
    lesson.check("the space is smooth: along a straight line no decoded step exceeds 1/3 of the whole change",
                 jump < 1 / 3, f"{jump:.3f}")


@atlas_entry(
    88,
    formula=r"\min_G \max_D\ \mathbb{E}_{(x, y)}\big[\log D(x, y)\big] + \mathbb{E}_{z, y}\big[\log(1 - D(G(z, y), y))\big]",
    see=("tfdl.models.ConditionalGAN", "tfdl.models.build_conditional_gan", "tfdl.models.ConditionalGANConfig"),
    configs=("digits_cgan",),
)
def conditional_gan(lesson: Lesson) -> None:
    """A **conditional GAN** gives both players the same extra input $y$ — a class label, text,
    another image — and so learns the conditional distribution $p(x \\mid y)$ instead of $p(x)$.
    The generator takes $(z, y)$; the discriminator judges *pairs* $(x, y)$, so a realistic
    sample with the wrong label is rejected as fake, and the only way for the generator to
    win is to produce samples that are both realistic and consistent with $y$. At sampling
    time one chooses $y$ and gets that kind of sample; $z$ still supplies the variety within
    the class.

    A standard GAN has no such handle: its samples come from the whole data distribution, and
    which mode a given $z$ lands in is an accident of training. In tfdl, `ConditionalGAN`
    embeds the label next to the noise in the generator and lays it over the image as an extra
    channel in the discriminator (`digits_cgan` asks for each digit by name). The example
    trains a tiny conditional GAN on four Gaussian clusters labelled 0-3 and asks for each
    label in turn.
    """
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    centres = np.array([[2, 0], [0, 2], [-2, 0], [0, -2]], "float32")
    rng = np.random.default_rng(lesson.seed)
    y = rng.integers(4, size=4096)
    x = centres[y] + 0.15 * rng.normal(size=(4096, 2)).astype("float32")
    onehot = np.eye(4, dtype="float32")
    generator, discriminator = _mlp(2 + 4, 2, "generator"), _mlp(2 + 4, 1, "discriminator")  # both see the label
    g_opt, d_opt = keras.optimizers.Adam(1e-3, beta_1=0.5), keras.optimizers.Adam(1e-3, beta_1=0.5)
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)
    data, labels = tf.constant(x), tf.constant(onehot[y])

    @tf.function
    def train(steps):
        for _ in tf.range(steps):
            pick = tf.random.uniform((128,), 0, len(x), tf.int32)
            real, label = tf.gather(data, pick), tf.gather(labels, pick)
            asked = tf.one_hot(tf.random.uniform((128,), 0, 4, tf.int32), 4)
            with tf.GradientTape() as tape:
                fake = generator(tf.concat([tf.random.normal((128, 2)), asked], 1))
                loss = (tf.reduce_mean(tf.nn.softplus(-discriminator(tf.concat([real, label], 1))))
                        + tf.reduce_mean(tf.nn.softplus(discriminator(tf.concat([fake, asked], 1)))))
            d_opt.apply(tape.gradient(loss, discriminator.trainable_variables), discriminator.trainable_variables)
            with tf.GradientTape() as tape:
                fake = generator(tf.concat([tf.random.normal((128, 2)), asked], 1))
                loss = tf.reduce_mean(tf.nn.softplus(-discriminator(tf.concat([fake, asked], 1))))
            g_opt.apply(tape.gradient(loss, generator.trainable_variables), generator.trainable_variables)

    train(tf.constant(lesson.budget(800, 4000)))
    z = np.random.default_rng(lesson.seed + 1).normal(size=(500, 2)).astype("float32")
    samples, rows, hits = {}, [], []
    for label in range(4):
        out = generator(np.concatenate([z, np.repeat(onehot[label:label + 1], 500, axis=0)], axis=1)).numpy()
        nearest = np.linalg.norm(out[:, None] - centres[None], axis=-1).argmin(axis=1)
        samples[label] = out
        share = float((nearest == label).mean())
        hits.append(share)
        rows.append((label, share, *np.bincount(nearest, minlength=4)))
        lesson.number(f"asked for label {label}: share nearest its cluster", share)
    lesson.table("Samples per label asked (columns: nearest cluster)", ("asked", "share as asked", "0", "1", "2", "3"),
                 rows)

    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for label in range(4):
        axes[0].scatter(*x[y == label][:300].T, s=3, color=f"C{label}", label=f"label {label}")
        axes[1].scatter(*samples[label][:300].T, s=3, color=f"C{label}", label=f"G(z, {label})")
    axes[0].set(title="Training data (x, y)", xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
    axes[1].set(title="Generated, asking for each label", xlabel="$x_1$", aspect="equal")
    for ax in axes:
        ax.legend(fontsize=7, markerscale=3)
    lesson.figure(fig, "conditional", "A conditional GAN generates from the cluster of the label it is given; the "
                  "same noise z with another label lands in another cluster.")

    lesson.check("each label asked for gives samples in its own cluster (share >= 0.9 for every label)",
                 min(hits) >= 0.9, f"{[round(h, 3) for h in hits]}")
    moved = np.linalg.norm(samples[0] - samples[2], axis=1).mean()
    lesson.check("the label, not the noise, picks the cluster: the same z with labels 0 and 2 lands ~4 apart "
                 "(mean distance > 3)", moved > 3, f"{moved:.2f}")


@atlas_entry(
    81,
    formula=r"\text{GAN: } \min_G \max_D\ \mathbb{E}[\log D(x)] + \mathbb{E}[\log(1 - D(G(z)))]\qquad "
    r"\text{VAE: } \max\ \mathbb{E}_{q(z \mid x)}[\log p(x \mid z)] - D_{\mathrm{KL}}(q(z \mid x)\,\|\,p(z))",
    see=("tfdl.models.GAN", "tfdl.models.VAE", "tfdl.models.build_dcgan", "tfdl.models.build_vae"),
    configs=("digits_dcgan", "digits_wgan_gp"),
)
def gan_vs_vae(lesson: Lesson) -> None:
    """Both turn noise into data through a decoder network, but they learn it differently.

    A **VAE** is trained by (a bound on) maximum likelihood: an encoder maps each training
    example to a posterior over codes and the decoder must explain *every* example from its
    code. That makes training a stable minimization with a meaningful loss, gives an encoder
    for free and a likelihood bound per example, and punishes missing any part of the data —
    so VAEs cover all modes. But a simple likelihood (a Gaussian or Bernoulli per pixel)
    rewards averaging: where the decoder is unsure it outputs the mean of the possibilities,
    and samples come out blurry, smeared between modes.

    A **GAN** has no likelihood and no encoder; a learned discriminator judges samples, and
    the generator is rewarded only for samples the discriminator cannot tell from data. An
    average of two plausible outputs is not plausible, so GAN samples are sharp. The price
    is an unstable two-player game, no likelihood to evaluate, and nothing that forces full
    coverage, so GANs may drop modes (question 85). In short: VAEs trade sharpness for
    coverage and stability; GANs trade coverage and stability for sharpness.

    The example trains tfdl's VAE and a toy GAN of comparable size on a ring of eight
    narrow Gaussians and measures sharpness (share of samples within 3σ of a mode) and
    coverage (how the samples spread over the eight modes). tfdl's VAE models each
    coordinate as a Bernoulli probability, a weak likelihood for two numbers; with the full
    KL weight it ignores its code and outputs the mean point (posterior collapse), so the
    example lowers the KL weight to $\beta = 0.01$.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    data, _ = _ring(4096, lesson.seed)
    gan = _ToyGAN(data, latent_dim=2, seed=lesson.seed)
    gan.train(lesson.budget(1500, 5000))
    # tfdl's VAE models values in [0, 1] (a Bernoulli likelihood per coordinate): rescale the ring into it.
    vae, _ = _fit_vae_points((data + 3.0) / 6.0, epochs=lesson.budget(20, 100), seed=lesson.seed, beta=0.01)
    samples = {"GAN": gan.sample(2000, seed=lesson.seed + 1), "VAE": vae.sample(2000, seed=lesson.seed + 1) * 6.0 - 3.0}
    rows, results = [], {}
    for name, points in samples.items():
        _, sharp = _ring_modes(points)
        angle = np.round(np.arctan2(points[:, 1], points[:, 0]) / (2 * np.pi / 8)).astype(int) % 8
        sector = np.bincount(angle, minlength=8) / len(points)  # share of samples nearest each mode's direction
        results[name] = (sharp, sector.min())
        rows.append((name, sharp, int((sector >= 0.05).sum()), sector.min()))
        lesson.number(f"{name}: share of samples within 3 std of a mode", sharp)
        lesson.number(f"{name}: smallest share of samples in a mode's direction", float(sector.min()))
    lesson.table("Ring of 8 Gaussians (std 0.05)", ("model", "sharp: within 3σ of a mode",
                                                     "directions with >= 5% of samples", "smallest direction share"),
                 rows)

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8), sharex=True, sharey=True)
    for ax, (name, points) in zip(axes, [("data", data[:2000]), *samples.items()]):
        ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5)
        ax.set(title=name, xlabel="$x_1$", aspect="equal", xlim=(-3, 3), ylim=(-3, 3))
    axes[0].set_ylabel("$x_2$")
    lesson.figure(fig, "gan_vs_vae", "The same ring learned two ways: the GAN's samples sit on the modes, the VAE's "
                  "are spread around and between them.")

    gan_sharp, vae_sharp = results["GAN"][0], results["VAE"][0]
    lesson.check("GAN samples are sharper: share within 3σ of a mode > 1.5x the VAE's", gan_sharp > 1.5 * vae_sharp,
                 f"GAN {gan_sharp:.3f}, VAE {vae_sharp:.3f}")
    lesson.check("the VAE covers every mode: each of the 8 directions gets >= 5% of its samples",
                 results["VAE"][1] >= 0.05, f"smallest share {results['VAE'][1]:.3f}")


def _fit_vae_points(x, *, epochs: int, seed: int, beta: float = 1.0):
    """tfdl's VAE with a 2-D code for 2-D points in [0, 1]; returns it and its history."""
    import keras
    import tensorflow as tf

    from tfdl.models import VAEConfig, build_vae

    vae = build_vae(VAEConfig(input_shape=(2,), latent_dim=2, hidden_units=(64, 64), beta=beta, seed=seed))
    vae.compile(keras.optimizers.Adam(3e-3), steps_per_execution=32)
    feed = tf.data.Dataset.from_tensor_slices(x).shuffle(len(x), seed=seed).repeat().batch(128)
    return vae, vae.fit(feed, steps_per_epoch=32, epochs=epochs, shuffle=False, verbose=0).history


@atlas_entry(
    85,
    formula=r"\text{against a fixed } D:\quad \min_G\ \mathbb{E}_z\big[-\log D(G(z))\big] \text{ is reached by } "
    r"G(z) \equiv \arg\max_x D(x) \text{ for every } z",
    see=("tfdl.models.WGAN", "tfdl.models.WGANConfig", "tfdl.models.GANConfig", "tfdl.losses.gradient_penalty"),
    configs=("digits_dcgan", "digits_wgan_gp"),
)
def mode_collapse(lesson: Lesson) -> None:
    """**Mode collapse** is a generator that produces only a few kinds of output — a few of
    the ten digits, a few faces — however its noise is varied: many $z$ map to (nearly) the
    same $x$. Each sample still looks real, so the discriminator's loss does not reveal it;
    it shows in the diversity of the samples (modes covered, class histograms, FID).

    The cause is in the game. The generator's loss is a sum over independent samples, and
    nothing in it rewards variety: against a *fixed* discriminator its best response is to
    put every sample at the single point the discriminator likes most. Only the
    discriminator's next updates, which learn to reject the over-produced mode, push the
    generator away — often onto another single mode (mode hopping) rather than back to all
    of them. So collapse appears whenever the generator gets ahead of the discriminator:
    too many or too large generator steps, a discriminator that learns too slowly.

    Remedies make the discriminator able to see diversity or keep the game balanced:
    *minibatch discrimination* and the *minibatch standard deviation* feature (the
    discriminator sees statistics of the whole batch, so a batch of near-copies is
    obviously fake), *packing* (PacGAN: judge several samples jointly), *unrolled GANs* (the
    generator optimizes against the discriminator's future responses), the *Wasserstein loss
    with a gradient penalty* (a critic trained to optimality keeps useful gradients towards
    every uncovered mode), and plain care with learning rates and step ratios. The example
    trains a balanced toy GAN on a ring of eight Gaussians, then lets the generator take
    large steps against its frozen discriminator, and counts the modes covered.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    data, _ = _ring(4096, lesson.seed)
    gan = _ToyGAN(data, latent_dim=2, seed=lesson.seed)
    gan.train(lesson.budget(1500, 4000))
    balanced = gan.sample(2000, seed=lesson.seed + 1)
    gan.g_optimizer.learning_rate.assign(1e-2)  # the generator gets ahead: large steps, discriminator frozen
    gan.train(lesson.budget(1000, 2000), d=0, g=1)
    collapsed = gan.sample(2000, seed=lesson.seed + 1)

    covered, rows = {}, []
    for name, points in (("balanced game (1 D step : 1 G step)", balanced),
                         ("generator ahead (G alone, lr x10)", collapsed)):
        counts, sharp = _ring_modes(points)
        covered[name] = int((counts >= 0.025 * len(points)).sum())
        rows.append((name, covered[name], sharp, float(counts.max() / max(counts.sum(), 1))))
        lesson.number(f"{name}: modes with >= 2.5% of samples", covered[name])
    lesson.table("Modes of the 8-Gaussian ring covered", ("training", "modes covered (of 8)", "share within 3σ of a mode",
                                                           "largest mode's share of those"), rows)

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
    for ax, (name, points) in zip(axes, (("data", data[:2000]), *zip(covered, (balanced, collapsed)))):
        ax.scatter(data[:500, 0], data[:500, 1], s=2, color="lightgrey")
        ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5)
        title = name if name == "data" else f"{name}\n{covered[name]} of 8 modes"
        low, high = min(-3, points.min() - 0.2), max(3, points.max() + 0.2)
        ax.set(title=title, xlabel="$x_1$", aspect="equal", xlim=(low, high), ylim=(low, high))
        ax.title.set_fontsize(9)
    axes[0].set_ylabel("$x_2$")
    lesson.figure(fig, "mode_collapse", "A balanced GAN covers the ring; when the generator runs ahead of a frozen "
                  "discriminator, its samples pile into the one or two places that discriminator scores highest, which "
                  "need not even be on the data (data in grey; a ReLU discriminator grows without bound off it).")

    before, after = covered.values()
    lesson.check("the balanced game covers at least 7 of the 8 modes", before >= 7, f"{before}")
    pile = {}
    for name, points in zip(covered, (balanced, collapsed)):  # share of samples in the busiest mode's direction
        sector = np.round(np.arctan2(points[:, 1], points[:, 0]) / (2 * np.pi / 8)).astype(int) % 8
        pile[name] = lesson.number(f"{name}: largest share of samples in one mode's direction",
                                   float(np.bincount(sector, minlength=8).max() / len(points)))
    before_pile, after_pile = pile.values()
    lesson.check("with the generator ahead, samples collapse: at most 4 modes covered and over half of all samples "
                 "in one direction (balanced: <= 0.3)", after <= 4 and after_pile > 0.5 and before_pile <= 0.3,
                 f"{after} modes; busiest direction {before_pile:.2f} -> {after_pile:.2f}")
