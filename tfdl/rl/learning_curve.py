"""The learning curve of a run: episode returns against environment steps, as a PNG and as figures.

Episodes are `(env_step_at_end, return, length)` tuples, as `EnvRunner`
records them; the smoothed curve is the mean of the last `window` episodes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` values at each position (fewer at the start)."""
    values = np.asarray(values, np.float64)
    sums = np.cumsum(np.insert(values, 0, 0.0))
    index = np.arange(1, len(values) + 1)
    start = np.maximum(index - window, 0)
    return (sums[index] - sums[start]) / (index - start)


def summarize_curve(episodes: list[tuple[int, float, int]], window: int = 100) -> dict:
    """Figures of a learning curve for a report.

    Args:
        episodes: `(env_step, return, length)` of every finished training episode.
        window: episodes in the rolling mean.

    Returns:
        episodes, first and last rolling means, the best rolling mean and the env step it was reached at.
    """
    if not episodes:
        return {"episodes": 0}
    steps = np.array([e[0] for e in episodes])
    smooth = rolling_mean(np.array([e[1] for e in episodes]), window)
    best = int(np.argmax(smooth))
    return {
        "episodes": len(episodes),
        "first_return": float(episodes[0][1]),
        "final_rolling_mean": float(smooth[-1]),
        "best_rolling_mean": float(smooth[best]),
        "best_rolling_mean_step": int(steps[best]),
        "window": window,
    }


def plot_learning_curve(episodes: list[tuple[int, float, int]], path: Path | str, title: str,
                        window: int = 100) -> Path:
    """Draw episode returns (dots) and their rolling mean (line) against env steps.

    Args:
        episodes: as `summarize_curve`.
        path: the PNG to write (parent folders are made).
        title: the figure's title.
        window: episodes in the rolling mean.

    Returns:
        `path`.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(7, 4))
    if episodes:
        steps = np.array([e[0] for e in episodes])
        returns = np.array([e[1] for e in episodes])
        axes.plot(steps, returns, ".", alpha=0.25, markersize=3, label="episode return")
        axes.plot(steps, rolling_mean(returns, window), label=f"mean of last {window}")
        axes.legend(loc="lower right")
    axes.set_xlabel("environment steps")
    axes.set_ylabel("return")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
