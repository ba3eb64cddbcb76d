"""Training for CIAGAN and the DP latent autoencoder: one Trainer, checkpoints, resume.

CIAGAN step (as in the reference design): a siamese update (contrastive loss on pairs of
real faces, same pseudo-identity or not), a PatchGAN critic update (LSGAN, conditioned on the
landmark sketch), a generator update (LSGAN + contrastive pull towards a real face of the
target identity + push away from the source face). CIAGAN itself has no reconstruction loss;
we add one weak term, an L1 between 8x8-average-pooled output and input (colour and lighting
only, no identity at that scale), so a short CPU run converges. At 128 px two more terms fight
the artefacts seen on real photos: feature matching (the batch means of the critic's stage
outputs for fake faces pulled to those for real ones: no paired target, so the identity can
change) and a mask-edge term (the gradient magnitude on a band across the mask border may not
exceed the real face's there: no seam, no band); an optional colour and gamma jitter widens
the training faces' lighting towards real photos'. DP: L1 reconstruction of the
face interior through the clipped, Laplace-noised latent, with epsilon drawn per sample so
the decoder learns to denoise at every privacy level.

Checkpoints hold every network, optimizer and the sampler's RNG state, so a resumed run
continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn

from veilchain.anonymizer import ciagan as C
from veilchain.anonymizer import dp_latent as D
from veilchain.anonymizer.corpus import Corpus
from veilchain.anonymizer.export import export_weights
from veilchain.errors import InputError

log = logging.getLogger("veilchain.train")
CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainConfig:
    model: str = "ciagan"  # "ciagan" | "dp"
    steps: int = 10_000
    batch: int = 16
    lr: float = 2e-4
    ch: int = 24
    checkpoint_every: int = 250
    log_every: int = 25
    max_minutes: float | None = None
    # CIAGAN
    id_dim: int = 64
    lambda_id: float = 1.0
    lambda_low: float = 2.0
    margin: float = 1.0
    res: int = C.RES  # 64: the U-Net body alone; 128: with the detail head
    lambda_fm: float = 0.0  # feature matching on the critic's stages
    lambda_edge: float = 0.0  # mask-edge gradient term
    jitter: float = 0.0  # colour/gamma jitter strength (0: none)
    # DP
    latent: int = D.DEFAULT_LATENT
    clip: float = D.DEFAULT_CLIP
    eps_min: float = 0.05
    eps_max: float = 50.0
    p_clean: float = 0.15


def _tensors(corpus: Corpus, res: int = C.RES) -> dict[str, torch.Tensor]:
    n = len(corpus.faces)
    img = np.empty((n, 3, res, res), np.float32)
    sk = np.empty((n, 1, res, res), np.float32)
    m = np.empty((n, 1, res, res), np.float32)
    for i in range(n):
        img[i], sk[i], m[i] = C.prepare(corpus.faces[i], corpus.landmarks[i], res)
    return {
        "img": torch.from_numpy(img),
        "sk": torch.from_numpy(sk),
        "m": torch.from_numpy(m),
        "id": torch.from_numpy(np.asarray(corpus.identity, np.int64)),
    }


class Trainer:
    """Trains one model on the train split of ``corpus``; writes checkpoints to ``out_dir``."""

    def __init__(
        self,
        corpus: Corpus,
        out_dir: Path,
        config: TrainConfig,
        *,
        seed: int = 0,
        device: str = "cpu",
        centroids: np.ndarray | None = None,
    ):
        if config.model not in ("ciagan", "dp"):
            raise InputError(f"unknown model {config.model!r}; use ciagan or dp")
        train = corpus.train()
        if len(train.faces) < config.batch:
            raise InputError(f"only {len(train.faces)} training faces; need >= {config.batch}")
        self.cfg = config
        self.seed = seed
        self.device = torch.device(device)
        self.out_dir = Path(out_dir)
        self.centroids = centroids
        torch.manual_seed(seed)
        self.data = {k: v.to(self.device) for k, v in _tensors(train, config.res).items()}
        self.n = len(train.faces)
        self.num_ids = int(self.data["id"].max()) + 1
        ids = self.data["id"].cpu()
        self.order = torch.argsort(ids, stable=True)
        self.counts = torch.bincount(ids, minlength=self.num_ids)
        self.starts = torch.cumsum(self.counts, 0) - self.counts
        self.gen = torch.Generator().manual_seed(seed)
        self.step = 0
        self.elapsed = 0.0
        self.init_meta: dict | None = None  # set by a warm start (init_from_weights)
        c = config.ch
        if config.model == "ciagan":
            self.nets = {
                "generator": C.IdentityGenerator(self.num_ids, c, config.id_dim, config.res),
                "critic": C.PatchDiscriminator(c, res=config.res),
                "siamese": C.SiameseNet(c),
            }
        else:
            self.nets = {
                "encoder": D.LatentEncoder(config.latent, c),
                "decoder": D.LatentDecoder(config.latent, c),
            }
        for net in self.nets.values():
            net.to(self.device)
        self.opts = {
            k: torch.optim.Adam(v.parameters(), lr=config.lr, betas=(0.5, 0.999))
            for k, v in self.nets.items()
        }
        if config.model == "dp":  # one optimizer for the autoencoder
            params = [*self.nets["encoder"].parameters(), *self.nets["decoder"].parameters()]
            self.opts = {"ae": torch.optim.Adam(params, lr=config.lr, betas=(0.5, 0.999))}

    # --- sampling ----------------------------------------------------------
    def _rand(self, *shape) -> torch.Tensor:
        return torch.rand(shape, generator=self.gen)

    def _batch(self, idx: torch.Tensor, flip: torch.Tensor):
        out = []
        for key in ("img", "sk", "m"):
            x = self.data[key][idx]
            out.append(torch.where(flip.view(-1, 1, 1, 1).to(x.device), x.flip(3), x))
        if self.cfg.jitter > 0:
            out[0] = self._jitter(out[0])
        return out

    def _jitter(self, img: torch.Tensor) -> torch.Tensor:
        """Per face: a gamma and a gain per channel, exp(U(-j, j)) and exp(U(-j/2, j/2))."""
        j, B = self.cfg.jitter, len(img)
        gamma = torch.exp((self._rand(B, 1, 1, 1) * 2 - 1) * j).to(img.device)
        gain = torch.exp((self._rand(B, 3, 1, 1) * 2 - 1) * j / 2).to(img.device)
        x = ((img + 1) / 2).clamp(1e-4, 1) ** gamma * gain
        return x.clamp(0, 1) * 2 - 1

    def _member(self, ident: torch.Tensor) -> torch.Tensor:
        """A random training face of each given identity."""
        off = (self._rand(len(ident)) * self.counts[ident]).long()
        return self.order[self.starts[ident] + off]

    # --- steps -------------------------------------------------------------
    def _ciagan_step(self) -> dict[str, float]:
        cfg, B = self.cfg, self.cfg.batch
        G, S = self.nets["generator"], self.nets["siamese"]
        Dc = cast(C.PatchDiscriminator, self.nets["critic"])
        idx = torch.randint(self.n, (B,), generator=self.gen)
        flip = self._rand(B) < 0.5
        img, sk, m = self._batch(idx, flip)
        src = self.data["id"][idx].cpu()
        shift = torch.randint(1, self.num_ids, (B,), generator=self.gen)
        target = (src + shift) % self.num_ids  # never the source's identity
        t_img, _, t_m = self._batch(self._member(target), self._rand(B) < 0.5)
        # siamese: half the pairs share an identity
        same_pick = self._rand(B) < 0.5
        other = torch.where(
            same_pick, self._member(src), torch.randint(self.n, (B,), generator=self.gen)
        )
        o_img, _, o_m = self._batch(other, self._rand(B) < 0.5)
        same = (self.data["id"][other].cpu() == src).float().to(self.device)
        loss_s = C.contrastive(self._S(img, m), self._S(o_img, o_m), same, cfg.margin)
        self.opts["siamese"].zero_grad()
        loss_s.backward()
        self.opts["siamese"].step()
        target = target.to(self.device)
        # critic
        with torch.no_grad():
            fake = G(img, sk, m, target)
        loss_d = ((Dc(img, sk) - 1) ** 2).mean() + (Dc(fake, sk) ** 2).mean()
        self.opts["critic"].zero_grad()
        loss_d.backward()
        self.opts["critic"].step()
        # generator
        for p in [*Dc.parameters(), *S.parameters()]:
            p.requires_grad_(False)
        fake = G(img, sk, m, target)
        score, f_fake = Dc.features(fake, sk)
        loss_gan = ((score - 1) ** 2).mean()
        e_f = self._S(fake, m)
        with torch.no_grad():
            e_t, e_s = self._S(t_img, t_m), self._S(img, m)
            f_real = Dc.features(img, sk)[1] if cfg.lambda_fm > 0 else []
        pull = ((e_f - e_t) ** 2).sum(1).mean()
        push = (torch.relu(cfg.margin - (e_f - e_s).norm(dim=1)) ** 2).mean()
        pool, k = nn.functional.avg_pool2d, 8 * cfg.res // C.RES  # 8 px at 64: colour only
        low = (pool(fake, k) - pool(img, k)).abs().mean()
        fm = torch.zeros(())
        for a, b in zip(f_fake, f_real, strict=False):  # f_real is empty without FM
            fm = fm + (a.mean(0) - b.mean(0)).abs().mean()
        edge = C.mask_edge_excess(fake, img, m) if cfg.lambda_edge > 0 else torch.zeros(())
        loss_g = (
            loss_gan
            + cfg.lambda_id * (pull + push)
            + cfg.lambda_low * low
            + cfg.lambda_fm * fm
            + cfg.lambda_edge * edge
        )
        self.opts["generator"].zero_grad()
        loss_g.backward()
        self.opts["generator"].step()
        for p in [*Dc.parameters(), *S.parameters()]:
            p.requires_grad_(True)
        return {
            "D": loss_d.item(),
            "G": loss_gan.item(),
            "S": loss_s.item(),
            "pull": pull.item(),
            "push": push.item(),
            "low": low.item(),
            **({"fm": fm.item()} if cfg.lambda_fm > 0 else {}),
            **({"edge": edge.item()} if cfg.lambda_edge > 0 else {}),
        }

    def _S(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The siamese identity network, always at 64 px (identity lives at that scale)."""
        if image.shape[-1] != C.RES:
            f = image.shape[-1] // C.RES
            image, mask = nn.functional.avg_pool2d(image, f), nn.functional.avg_pool2d(mask, f)
        return self.nets["siamese"](image, mask)

    def _dp_step(self) -> dict[str, float]:
        cfg, B = self.cfg, self.cfg.batch
        enc, dec = self.nets["encoder"], self.nets["decoder"]
        idx = torch.randint(self.n, (B,), generator=self.gen)
        img, sk, m = self._batch(idx, self._rand(B) < 0.5)
        lo, hi = math.log(cfg.eps_min), math.log(cfg.eps_max)
        eps = torch.exp(lo + (hi - lo) * self._rand(B))
        s = torch.where(self._rand(B) < cfg.p_clean, torch.zeros(B), 2.0 / eps)
        z = D.clip_l1(enc(img, m), cfg.clip)
        u = (self._rand(B, cfg.latent).double() - 0.5).clamp(-0.5 + 1e-12, 0.5 - 1e-12)
        noise = (-torch.sign(u) * torch.log1p(-2 * u.abs())).float() * (s * cfg.clip)[:, None]
        out = dec(img, m, z + noise.to(self.device), cfg.clip, s.to(self.device))
        area = m.sum().clamp_min(1.0) * 3
        loss = ((out - img).abs() * m).sum() / area
        self.opts["ae"].zero_grad()
        loss.backward()
        self.opts["ae"].step()
        return {"L1": loss.item(), "noise_rel_mean": float(s.mean())}

    # --- checkpoints -------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "elapsed": self.elapsed,
            "seed": self.seed,
            "config": asdict(self.cfg),
            "nets": {k: v.state_dict() for k, v in self.nets.items()},
            "opts": {k: v.state_dict() for k, v in self.opts.items()},
            "gen_state": self.gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "init_from": self.init_meta,
            "train_faces": self.n,
            "torch_threads": torch.get_num_threads(),
        }

    def save_checkpoint(self, path: Path | None = None) -> Path:
        path = Path(path or self.out_dir / CHECKPOINT)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)
        return path

    def load_checkpoint(self, path: Path | None = None) -> None:
        path = Path(path or self.out_dir / CHECKPOINT)
        if not path.is_file():
            raise InputError(f"no checkpoint at {path}; run without --resume first")
        st = torch.load(path, map_location=self.device, weights_only=False)
        if st["config"]["model"] != self.cfg.model:
            raise InputError(f"{path} is a {st['config']['model']} checkpoint")
        for k, v in self.nets.items():
            v.load_state_dict(st["nets"][k])
        for k, opt in self.opts.items():
            opt.load_state_dict(st["opts"][k])
        self.gen.set_state(st["gen_state"])
        torch.set_rng_state(st["torch_rng"])
        self.step = int(st["step"])
        self.elapsed = float(st["elapsed"])
        self.init_meta = st.get("init_from")

    # --- loop --------------------------------------------------------------
    def init_from_weights(self, weights_dir: Path) -> dict:
        """Warm start: load the networks an exported weights file holds (fp16 -> fp32); the
        others (critic, siamese) and the optimizers start fresh. Returns the file's metadata."""
        name, fmt = (
            (C.CIAGAN_WEIGHTS, C.FORMAT) if self.cfg.model == "ciagan" else (D.DP_WEIGHTS, D.FORMAT)
        )
        state, meta = C.load_checkpoint_file(Path(weights_dir) / name, fmt)
        for key, net in self.nets.items():
            if key in state:
                try:
                    missing, unexpected = net.load_state_dict(
                        {k: v.float() for k, v in state[key].items()}, strict=False
                    )
                except RuntimeError as exc:
                    raise InputError(f"cannot warm-start {key} from {weights_dir}: {exc}") from exc
                # a 64 px generator warm-starts a 128 px one: only the new head starts fresh
                if unexpected or any(not k.startswith("head.") for k in missing):
                    raise InputError(
                        f"cannot warm-start {key} from {weights_dir}: "
                        f"missing {missing[:3]}, unexpected {unexpected[:3]}"
                    )
        self.init_meta = {"sha256": meta.get("sha256"), "steps": meta.get("steps")}
        return meta

    def train(self, *, resume: bool = False, progress=None) -> dict:
        """Run until ``steps`` or ``max_minutes``; checkpoint every N steps and at the end."""
        if resume:
            self.load_checkpoint()
        cfg = self.cfg
        say = progress or log.info
        step_fn = self._ciagan_step if cfg.model == "ciagan" else self._dp_step
        for net in self.nets.values():
            net.train()
        t_start, t_win, n_win = time.time(), time.time(), 0
        base_elapsed = self.elapsed
        sums: dict[str, float] = {}
        while self.step < cfg.steps:
            losses = step_fn()
            self.step += 1
            n_win += 1
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
            self.elapsed = base_elapsed + time.time() - t_start
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                rate = n_win * cfg.batch / max(time.time() - t_win, 1e-9)
                parts = " ".join(f"{k}={v / n_win:.4f}" for k, v in sums.items())
                say(
                    f"{cfg.model} step {self.step}/{cfg.steps} {rate:.1f} img/s "
                    f"elapsed {self.elapsed / 60:.1f} min {parts}"
                )
                t_win, n_win, sums = time.time(), 0, {}
            if self.step % cfg.checkpoint_every == 0:
                self.save_checkpoint()
            if cfg.max_minutes is not None and time.time() - t_start > cfg.max_minutes * 60:
                say(f"time budget of {cfg.max_minutes} min reached at step {self.step}")
                break
        self.save_checkpoint()
        return {"step": self.step, "elapsed_s": round(self.elapsed, 1)}

    # --- export ------------------------------------------------------------
    def export(self, weights_dir: Path, extra: dict | None = None) -> Path:
        """Write the inference weights (fp16) and their json metadata into ``weights_dir``."""
        return export_weights(
            self.state_dict(),
            weights_dir,
            centroids=self.centroids,
            extra=extra,
        )


def corpus_centroids(data_dir: Path, corpus: Corpus) -> np.ndarray:
    """Pseudo-identity centroids: stored in corpus.npz, else means of train embeddings."""
    npz = Path(data_dir) / "corpus.npz"
    if npz.is_file():
        with np.load(npz) as z:
            if "centroids" in z:
                return z["centroids"]
    train = corpus.train()
    if train.embeddings is None:
        raise InputError(f"{data_dir} has no embeddings to derive identity centroids from")
    k = int(train.identity.max()) + 1
    return np.stack([train.embeddings[train.identity == i].mean(0) for i in range(k)])


def run_training(
    model: str,
    data_dir: Path,
    out_dir: Path,
    *,
    steps: int | None = None,
    max_minutes: float | None = None,
    resume: bool = False,
    seed: int = 0,
    threads: int | None = None,
    weights_dir: Path | None = None,
    init_from: Path | None = None,
    progress=None,
    **overrides,
) -> dict:
    """Load the data, train, export weights into ``weights_dir`` (default out_dir/weights)."""
    from veilchain.anonymizer.corpus import load_corpus

    if threads:
        torch.set_num_threads(threads)
    say = progress or log.info
    corpus = load_corpus(data_dir)
    cfg = TrainConfig(model=model, max_minutes=max_minutes, **overrides)
    if steps is not None:
        cfg.steps = steps
    centroids = corpus_centroids(data_dir, corpus) if model == "ciagan" else None
    trainer = Trainer(corpus, out_dir, cfg, seed=seed, centroids=centroids)
    say(
        f"{model}: {trainer.n} training faces, {trainer.num_ids} identities, "
        f"{torch.get_num_threads()} threads, seed {seed}"
    )
    if init_from is not None and not resume:
        trainer.init_from_weights(init_from)
        assert trainer.init_meta is not None, "a warm start records its source"
        say(f"warm start from {init_from} ({trainer.init_meta['steps']} steps)")
    result = trainer.train(resume=resume, progress=say)
    path = trainer.export(
        Path(weights_dir or Path(out_dir) / "weights"), extra={"data": str(data_dir)}
    )
    say(f"exported {path} after {result['step']} steps ({result['elapsed_s'] / 60:.1f} min)")
    return {**result, "weights": str(path)}


def main(argv: list[str] | None = None) -> None:
    """``python -m veilchain.anonymizer.training evaluate ciagan|dp --data DIR [...]``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m veilchain.anonymizer.training")
    p.add_argument("command", choices=["evaluate", "export"])
    p.add_argument("model", choices=["ciagan", "dp"])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--weights", type=Path, default=None)
    p.add_argument("--epsilons", default="0.1,0.5,1,2,5,10")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--retries", type=int, default=None, help="default: the pipeline's")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=1, help="evaluation processes")
    p.add_argument(
        "--check-epsilons",
        default="1",
        help="DP: epsilons evaluated with identity-check retries (others: none)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="evaluate: also write the JSON here; export: the run folder",
    )
    a = p.parse_args(argv)
    from veilchain.anonymizer.corpus import load_corpus

    torch.set_num_threads(a.threads)
    if a.command == "export":  # checkpoint in --out's folder -> weights into --weights
        ckpt = torch.load(a.out / CHECKPOINT, map_location="cpu", weights_only=False)
        corpus = load_corpus(a.data)
        cents = corpus_centroids(a.data, corpus) if a.model == "ciagan" else None
        extra = {"data": str(a.data), "train_faces": len(corpus.train().faces)}
        path = export_weights(ckpt, a.weights, centroids=cents, extra=extra)
        print(path)
        return
    from veilchain.anonymizer.holdout import evaluate_weights

    results = evaluate_weights(
        a.model,
        load_corpus(a.data),
        weights=a.weights,
        epsilons=[float(e) for e in a.epsilons.split(",")],
        check_epsilons={float(e) for e in a.check_epsilons.split(",") if e},
        retries=a.retries,
        limit=a.limit,
        workers=a.workers,
        say=lambda m: print(m, flush=True),
    )
    results = {"model": a.model, "data": str(a.data), "threads": a.threads, **results}
    text = json.dumps(results, indent=1)
    if a.out:
        a.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
