"""Training and held-out evaluation of the super-resolution network (``superres.py``).

Pairs come from the corpus's training split only: each aligned face averaged down to 64 px
(the DCGAN draws 64 px faces, sharp at that size) is the target, the same face averaged down
again to 32 px the input. Losses (``loss``):

- ``l1``: L1 to the target (rewards a blurred guess where the detail is uncertain);
- ``hf``: L1, plus L1 between the Laplacians of output and target, plus L1 between their
  local Laplacian energies (8x8 windows), which asks for as much fine detail as the target
  has there without asking for its exact phase;
- ``adv``: ``hf`` plus a small PatchGAN critic (LSGAN) on the output beside its bilinear input.

Checkpoints (network, optimizers, RNG, elapsed time) let a run resume exactly.

    veilchain train superres --data data/corpus_dcgan --out runs/sr --max-minutes 35
    python -m veilchain.anonymizer.superres_train evaluate --data data/corpus_dcgan \\
        --weights src/veilchain/anonymizer/weights
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from veilchain.anonymizer import superres as S
from veilchain.anonymizer.ciagan import _down, file_sha256
from veilchain.anonymizer.corpus import Corpus, load_corpus
from veilchain.anonymizer.metrics import inner_face_mask
from veilchain.errors import InputError

CHECKPOINT = "checkpoint.pt"
LOSSES = ("l1", "hf", "adv")
_LAPLACE = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
_GREY = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


@dataclass
class SRConfig:
    loss: str = "hf"
    steps: int = 100_000
    batch: int = 16
    lr: float = 2e-4
    ch: int = S.DEFAULT_CH
    blocks: int = S.DEFAULT_BLOCKS
    lambda_lap: float = 1.0
    lambda_energy: float = 1.0
    lambda_adv: float = 0.05
    checkpoint_every: int = 500
    log_every: int = 100
    max_minutes: float | None = None


def laplacian(x: torch.Tensor) -> torch.Tensor:
    """Laplacian of the grey level of (N, 3, H, W) images (replicated border)."""
    g = (x * _GREY).sum(1, keepdim=True)
    return nn.functional.conv2d(nn.functional.pad(g, (1, 1, 1, 1), mode="replicate"), _LAPLACE)


def _energy(lap: torch.Tensor) -> torch.Tensor:
    return (nn.functional.avg_pool2d(lap**2, 8) + 1e-6).sqrt()


def sharp_faces(corpus: Corpus, size: int = 64) -> torch.Tensor:
    """The corpus's faces averaged down to ``size`` px, (N, 3, size, size) in [-1, 1]."""
    small = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA)
                      for f in corpus.faces])  # fmt: skip
    return S.to_tensor(small)


class _Critic(nn.Module):
    """PatchGAN on the output beside the bilinear upsampling of its input (6 ch)."""

    def __init__(self, ch: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            _down(6, ch, norm=False), _down(ch, 2 * ch), nn.Conv2d(2 * ch, 1, 3, 1, 1)
        )

    def forward(self, image: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([image, base], 1))


class SRTrainer:
    """Trains :class:`~veilchain.anonymizer.superres.SuperResNet` on ``hr`` (sharp faces)."""

    def __init__(self, hr: torch.Tensor, out_dir: Path, cfg: SRConfig, *, seed: int = 0):
        if cfg.loss not in LOSSES:
            raise InputError(f"unknown super-resolution loss {cfg.loss!r}; use one of {LOSSES}")
        self.hr, self.out_dir, self.cfg, self.seed = hr, Path(out_dir), cfg, seed
        torch.manual_seed(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.net = S.SuperResNet(cfg.ch, cfg.blocks)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
        self.critic = _Critic() if cfg.loss == "adv" else None
        self.opt_d = (
            torch.optim.Adam(self.critic.parameters(), lr=cfg.lr, betas=(0.5, 0.99))
            if self.critic is not None
            else None
        )
        self.step, self.elapsed = 0, 0.0

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, len(self.hr), (self.cfg.batch,), generator=self.gen)
        hr = self.hr[idx]
        flip = torch.rand(self.cfg.batch, generator=self.gen) < 0.5
        hr = torch.where(flip[:, None, None, None], hr.flip(3), hr)
        return nn.functional.avg_pool2d(hr, 2), hr

    def _step(self) -> dict[str, float]:
        lr_img, hr = self._batch()
        out = self.net(lr_img)
        loss = nn.functional.l1_loss(out, hr)
        logs = {"l1": loss.item()}
        if self.cfg.loss in ("hf", "adv"):
            lo, lh = laplacian(out), laplacian(hr)
            lap = nn.functional.l1_loss(lo, lh)
            energy = nn.functional.l1_loss(_energy(lo), _energy(lh))
            loss = loss + self.cfg.lambda_lap * lap + self.cfg.lambda_energy * energy
            logs.update(lap=lap.item(), energy=energy.item())
        if self.critic is not None and self.opt_d is not None:
            base = nn.functional.interpolate(lr_img, scale_factor=2, mode="bilinear")
            adv = ((self.critic(out, base) - 1) ** 2).mean()
            loss = loss + self.cfg.lambda_adv * adv
            logs["adv"] = adv.item()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        if self.critic is not None and self.opt_d is not None:
            d_loss = ((self.critic(hr, base) - 1) ** 2).mean() + (
                self.critic(out.detach(), base) ** 2
            ).mean()
            self.opt_d.zero_grad()
            d_loss.backward()
            self.opt_d.step()
            logs["d"] = d_loss.item()
        return logs

    def state_dict(self) -> dict:
        return {
            "config": asdict(self.cfg),
            "net": self.net.state_dict(),
            "opt": self.opt.state_dict(),
            "critic": None if self.critic is None else self.critic.state_dict(),
            "opt_d": None if self.opt_d is None else self.opt_d.state_dict(),
            "step": self.step,
            "elapsed": self.elapsed,
            "seed": self.seed,
            "rng": self.gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "train_faces": len(self.hr),
        }

    def save_checkpoint(self) -> Path:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / CHECKPOINT
        tmp = path.with_suffix(".part")
        torch.save(self.state_dict(), tmp)
        tmp.replace(path)
        return path

    def load_checkpoint(self) -> None:
        state = torch.load(self.out_dir / CHECKPOINT, map_location="cpu", weights_only=False)
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        if self.critic is not None and self.opt_d is not None:
            self.critic.load_state_dict(state["critic"])
            self.opt_d.load_state_dict(state["opt_d"])
        self.step, self.elapsed, self.seed = state["step"], state["elapsed"], state["seed"]
        self.gen.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])

    def train(self, *, resume: bool = False, say=print) -> dict:
        """Run until ``steps`` or ``max_minutes``; checkpoint every N steps and at the end."""
        if resume:
            self.load_checkpoint()
        cfg, t0, base = self.cfg, time.time(), self.elapsed
        sums: dict[str, float] = {}
        while self.step < cfg.steps:
            for k, v in self._step().items():
                sums[k] = sums.get(k, 0.0) + v
            self.step += 1
            self.elapsed = base + time.time() - t0
            if self.step % cfg.log_every == 0:
                parts = " ".join(f"{k}={v / cfg.log_every:.4f}" for k, v in sums.items())
                say(f"superres step {self.step} {self.elapsed / 60:.1f} min {parts}")
                sums = {}
            if self.step % cfg.checkpoint_every == 0:
                self.save_checkpoint()
            if cfg.max_minutes is not None and time.time() - t0 > cfg.max_minutes * 60:
                say(f"time budget of {cfg.max_minutes} min reached at step {self.step}")
                break
        self.save_checkpoint()
        return {"step": self.step, "elapsed_s": round(self.elapsed, 1)}

    def export(self, weights_dir: Path, extra: dict | None = None) -> Path:
        """fp16 weights + json metadata, as :func:`superres.load_upsampler` reads them."""
        weights_dir = Path(weights_dir)
        weights_dir.mkdir(parents=True, exist_ok=True)
        path = weights_dir / S.SR_WEIGHTS
        torch.save({"net": {k: v.detach().half() for k, v in self.net.state_dict().items()}},
                   path)  # fmt: skip
        cfg = self.cfg
        meta = {
            "format": S.FORMAT, "ch": cfg.ch, "blocks": cfg.blocks, "loss": cfg.loss,
            "lambda_lap": cfg.lambda_lap, "lambda_energy": cfg.lambda_energy,
            "lambda_adv": cfg.lambda_adv if cfg.loss == "adv" else None,
            "steps": self.step, "batch": cfg.batch, "lr": cfg.lr, "seed": self.seed,
            "train_seconds": round(self.elapsed, 1), "train_faces": len(self.hr),
            "torch_threads": torch.get_num_threads(), "dtype": "float16",
            "scale": "trained 32 -> 64 px, applied 64 -> 128 px", **(extra or {}),
            "sha256": file_sha256(path),
        }  # fmt: skip
        path.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
        return path


def run_training(data_dir: Path, out_dir: Path, *, resume: bool = False, seed: int = 0,
                 threads: int | None = None, weights_dir: Path | None = None, say=print,
                 **overrides) -> dict:  # fmt: skip
    """Train on the corpus's training split; export into ``weights_dir`` (default
    ``out_dir/weights``)."""
    if threads:
        torch.set_num_threads(threads)
    corpus = load_corpus(data_dir).train()
    cfg = SRConfig(**overrides)
    trainer = SRTrainer(sharp_faces(corpus), out_dir, cfg, seed=seed)
    say(f"superres ({cfg.loss}): {len(corpus.faces)} training faces, "
        f"{torch.get_num_threads()} threads, seed {seed}")  # fmt: skip
    result = trainer.train(resume=resume, say=say)
    path = trainer.export(Path(weights_dir or Path(out_dir) / "weights"),
                          extra={"data": str(data_dir)})  # fmt: skip
    say(f"exported {path} after {result['step']} steps ({result['elapsed_s'] / 60:.1f} min)")
    return {**result, "weights": str(path)}


def evaluate_heldout(corpus: Corpus, weights_dir: Path, limit: int | None = None) -> dict:
    """32 -> 64 px on the held-out faces: PSNR to the sharp face and the Laplacian-variance
    ratio over the inner face (output over the sharp face; 1 = as much fine detail), for
    bilinear, bicubic and the network in ``weights_dir`` (medians over faces)."""
    up = S.load_upsampler(weights_dir)
    if up is None:
        raise InputError(f"no {S.SR_WEIGHTS} in {weights_dir}; train one first")
    test = corpus.test()
    hr = S.to_uint8(sharp_faces(test))[:limit]
    rows: dict[str, dict[str, list[float]]] = {
        k: {"psnr": [], "detail": []} for k in ("bilinear", "bicubic", "superres")
    }
    for face, lm in zip(hr, test.landmarks, strict=False):
        small = cv2.resize(face, (32, 32), interpolation=cv2.INTER_AREA)
        inner = inner_face_mask(lm * 0.5, face.shape)
        lap_hr = float(laplacian(S.to_tensor(face))[0, 0].numpy()[inner].var())
        outs = {
            "bilinear": cv2.resize(small, (64, 64), interpolation=cv2.INTER_LINEAR),
            "bicubic": cv2.resize(small, (64, 64), interpolation=cv2.INTER_CUBIC),
            "superres": up(small),
        }
        for k, out in outs.items():
            mse = float(np.mean((out.astype(np.float64) - face) ** 2))
            rows[k]["psnr"].append(10 * np.log10(255**2 / max(mse, 1e-9)))
            lap = float(laplacian(S.to_tensor(out))[0, 0].numpy()[inner].var())
            rows[k]["detail"].append(lap / max(lap_hr, 1e-12))
    return {
        "faces": len(hr),
        "weights_sha256": up.sha256,
        **{k: {m: round(float(np.median(v)), 4) for m, v in r.items()} for k, r in rows.items()},
    }


def main(argv: list[str] | None = None) -> None:
    """``python -m veilchain.anonymizer.superres_train evaluate --data DIR --weights DIR``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m veilchain.anonymizer.superres_train")
    p.add_argument("command", choices=["evaluate"])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--weights", type=Path, default=S.WEIGHTS_DIR)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    print(json.dumps(evaluate_heldout(load_corpus(a.data), a.weights, a.limit), indent=1))


if __name__ == "__main__":
    main()
