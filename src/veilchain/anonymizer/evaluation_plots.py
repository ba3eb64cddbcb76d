"""The pictures ``veilchain evaluate`` writes: the contact sheet (one row per face), the
privacy-utility curve and the before/after grid."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["plot_before_after", "plot_privacy_utility", "write_contact_sheet"]


def write_contact_sheet(
    crops: dict[str, list[np.ndarray]] | Sequence[dict[str, list[np.ndarray]]],
    path: Path,
    size: int = 128,
) -> None:
    """A PNG with one row per face: the original crop, then one crop per method (the dict's
    keys label the columns). Several dicts are laid side by side as blocks, each with its own
    columns and rows (scripts/model_card_grid.py: one block per source of faces)."""
    import cv2

    from veilchain.anonymizer.image_io import save_image

    blocks: list[dict[str, list[np.ndarray]]] = [crops] if isinstance(crops, dict) else list(crops)
    blocks = [b for b in blocks if any(len(c) for c in b.values())]
    if not blocks:
        return
    pad, head, gap = 4, 24, 16
    rows = max(len(c) for b in blocks for c in b.values())
    width = sum(len(b) * (size + pad) for b in blocks) + gap * (len(blocks) - 1)
    sheet = np.full((head + rows * (size + pad), width, 3), 255, np.uint8)
    x = 0
    for block in blocks:
        for label, column in block.items():
            cv2.putText(sheet, label[:18], (x + 2, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                        (0, 0, 0), 1)  # fmt: skip
            for r, crop in enumerate(column):
                y = head + r * (size + pad)
                sheet[y : y + size, x : x + size] = cv2.resize(crop, (size, size))
            x += size + pad
        x += gap
    save_image(sheet, path)


def plot_privacy_utility(results: list[dict], epsilon_methods: Sequence[str], path: Path) -> None:
    """Re-identification and face SSIM over epsilon; methods without one as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for method in epsilon_methods:
        rows = sorted((r for r in results if r["method"] == method), key=lambda r: r["epsilon"])
        if not rows:
            continue
        eps = [r["epsilon"] for r in rows]
        ax1.plot(eps, [r["reid_rate"] for r in rows], "o-", label=method)
        ax2.plot(eps, [r["ssim_face"] for r in rows], "o-", label=method)
    for r in results:
        if r["epsilon"] is None:
            for ax, key in ((ax1, "reid_rate"), (ax2, "ssim_face")):
                ax.axhline(r[key], ls="--", lw=0.8, color="grey")
                ax.annotate(r["method"], (0.1, r[key]), fontsize=7, color="grey")
    for ax, title in ((ax1, "re-identification rate (dlib rank-1)"), (ax2, "face SSIM")):
        ax.set_xscale("log")
        ax.set_xlabel("epsilon")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    ax1.set_ylim(-0.05, 1.05)
    if ax1.get_legend_handles_labels()[0]:
        ax1.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_before_after(samples: dict[str, dict[str, np.ndarray]], path: Path, rows: int = 4) -> None:
    """The first ``rows`` photos' face regions, original then each method (eps 1 only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(samples)[:rows]
    if not names:
        return
    cols = [c for c in samples[names[0]] if "eps=" not in c or "eps=1 " in c + " "]
    fig, axes = plt.subplots(len(names), len(cols), figsize=(2 * len(cols), 2 * len(names)))
    axes = np.atleast_2d(axes)
    for i, n in enumerate(names):
        for j, c in enumerate(cols):
            ax = axes[i, j]
            if c in samples[n]:
                ax.imshow(samples[n][c])
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(c, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
