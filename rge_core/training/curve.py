"""training_curve.png: the losses and the contrastive accuracy of metrics.jsonl against the step. Small on
purpose (640 x 360 px): the Prefect train summary embeds it as a data URI."""

from __future__ import annotations

from pathlib import Path

_LOSSES = ("loss", "emb_loss", "lm_loss")


def draw_training_curve(records: list[dict], out: Path) -> None:
    """`records`: metrics.jsonl's lines, parsed."""
    import matplotlib

    matplotlib.use("Agg")  # no display: the stage may run on a server or in a Prefect worker
    from matplotlib import pyplot as plt

    steps = [r["step"] for r in records]
    figure, (losses, accuracy) = plt.subplots(1, 2, figsize=(8, 4.5), dpi=80)
    for key in _LOSSES:
        losses.plot(steps, [r[key] for r in records], label=key)
    losses.set(xlabel="step", title="loss")
    losses.legend()
    accuracy.plot(steps, [r["accuracy"] for r in records], color="tab:green")
    accuracy.set(xlabel="step", title="contrastive accuracy", ylim=(0, 1))
    figure.tight_layout()
    figure.savefig(out, format="png")
    plt.close(figure)
