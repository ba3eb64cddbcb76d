"""From a training checkpoint to the inference weights the generators load.

:func:`export_weights` writes fp16 weights plus a JSON file of metadata (training settings,
steps, sha256) in the format :func:`veilchain.anonymizer.ciagan.build_ciagan_generator` and
:func:`veilchain.anonymizer.dp_latent.build_dp_generator` read.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from veilchain.anonymizer import ciagan as C
from veilchain.anonymizer import dp_latent as D
from veilchain.errors import InputError

__all__ = ["export_weights"]


def export_weights(
    checkpoint: dict,
    weights_dir: Path,
    *,
    centroids: np.ndarray | None = None,
    extra: dict | None = None,
) -> Path:
    """Inference weights (fp16) + json metadata from a checkpoint dict (``Trainer.state_dict``
    or a loaded ``checkpoint.pt``)."""
    weights_dir = Path(weights_dir)
    weights_dir.mkdir(parents=True, exist_ok=True)
    cfg, nets = checkpoint["config"], checkpoint["nets"]
    half = lambda sd: {k: v.detach().cpu().half() for k, v in sd.items()}  # noqa: E731
    meta = {
        "ch": cfg["ch"],
        "steps": checkpoint["step"],
        "seed": checkpoint["seed"],
        "batch": cfg["batch"],
        "lr": cfg["lr"],
        "train_seconds": round(checkpoint["elapsed"], 1),
        "resolution": cfg.get("res", C.RES),
        "dtype": "float16",
        "torch_threads": checkpoint.get("torch_threads"),  # None in older checkpoints
        "init_from": checkpoint.get("init_from"),
        "train_faces": checkpoint.get("train_faces"),
        **(extra or {}),
    }
    if cfg["model"] == "ciagan":
        if centroids is None:
            raise InputError("CIAGAN export needs the pseudo-identity centroids")
        state = {
            "generator": half(nets["generator"]),
            "centroids": torch.from_numpy(np.asarray(centroids, np.float32)),
        }
        path = weights_dir / C.CIAGAN_WEIGHTS
        num_ids = int(nets["generator"]["embed.weight"].shape[0])
        meta.update(
            format=C.FORMAT,
            num_ids=num_ids,
            id_dim=cfg["id_dim"],
            lambda_id=cfg["lambda_id"],
            lambda_low=cfg["lambda_low"],
            margin=cfg["margin"],
            **{k: cfg[k] for k in ("lambda_fm", "lambda_edge", "jitter") if cfg.get(k)},
        )
    else:
        state = {"encoder": half(nets["encoder"]), "decoder": half(nets["decoder"])}
        path = weights_dir / D.DP_WEIGHTS
        meta.update(
            format=D.FORMAT,
            latent=cfg["latent"],
            clip=cfg["clip"],
            eps_train_range=[cfg["eps_min"], cfg["eps_max"]],
        )
    torch.save(state, path)
    meta["sha256"] = C.file_sha256(path)
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    return path
