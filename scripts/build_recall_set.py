"""Build the face-recall benchmark set (bench/data/recall/) from its hand-annotated base.

    python scripts/build_recall_set.py                      # -> bench/data/recall/generated/
    python scripts/build_recall_set.py --out /tmp/recall    # elsewhere
    python scripts/build_recall_set.py --sheet docs/img/recall_set.png   # + contact sheet
    python scripts/build_recall_set.py --import-base        # re-copy base/ from the packages
    python scripts/build_recall_set.py --make-atlas         # re-draw base/synthetic_faces.jpg

Inputs (all in the repository): base/*.jpg (real photos, every face annotated by hand in
annotations.json), base/bg/*.jpg (backgrounds without people) and base/synthetic_faces.jpg
(DCGAN faces picked by eye). Output: one folder per category with JPEGs (quality 90) and
ground_truth.json listing every image (the base photos too) with its faces. Everything is
seeded: two builds give the same ground truth (and, with the same OpenCV, the same pixels).

Categories (each face's ``category``; ``tags`` say more):
  frontal      base photos + real and synthetic frontal faces pasted on backgrounds
  profile      the base profiles (3 faces of 2 people), flipped and pasted at other scales
  bowed        the base bowed heads (2 originals), flipped and pasted at other scales
  tilted       base frontal photos rotated by +-15, +-30, +-45 degrees (box: the rotated
               face ellipse's axis-aligned bounds, see :func:`rotated_box`)
  edge         faces cut 30-60 % (of the box's width or height) by the image border; the
               box is clipped to the image
  occluded     a skin-coloured hand over the mouth or the eyes, a pale-blue surgical mask, or
               dark hair strands over one eye, drawn on frontal faces
  small        faces 16, 20, 24, 32, 48 and 64 px tall pasted on backgrounds
  crowd        20-60 faces of 16-80 px on one background
  low_light    gamma 1.0-1.6 and an exposure cut to a mean luma of 25-45, plus shot and read noise
  motion_blur  linear blur kernels of 9-25 px at random angles
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data" / "recall"
BASE = DATA / "base"
ANNOTATIONS = DATA / "annotations.json"
ATLAS = BASE / "synthetic_faces.jpg"
DEFAULT_OUT = DATA / "generated"
DEFAULT_SEED = 20261203
CATEGORIES = (
    "frontal",
    "profile",
    "bowed",
    "tilted",
    "edge",
    "occluded",
    "small",
    "crowd",
    "low_light",
    "motion_blur",
)
#: base face categories that are pasted, rotated, occluded and degraded; other base faces
#: (a blurred face cut by the border) are scored in their photo only
SPRITE_CATEGORIES = ("frontal", "profile", "bowed")
#: face box inside a 64x64 DCGAN tile (hairline to chin, cheek to cheek), checked by eye
DCGAN_BOX = (9.0, 8.0, 55.0, 62.0)
DCGAN_SEED = 16
DCGAN_DRAWN = 240
#: tiles of dcgan_faces(240, seed=16) kept after looking at all 240 (the rest are dark,
#: smeared or not face-like)
DCGAN_KEPT = (
    4, 6, 12, 13, 14, 15, 18, 20, 22, 28, 29, 30, 31, 36, 37, 38, 40, 41, 44, 45, 46, 49, 50,
    51, 54, 55, 57, 60, 62, 69, 70, 71, 73, 74, 75, 76, 77, 78, 81, 83, 84, 85, 88, 89, 90,
    92, 94, 96, 97, 98, 99, 100, 104, 106, 107, 108, 109, 111, 131, 132, 138, 139, 142, 143,
    144, 145, 146, 151, 153, 159, 162, 164, 169, 171, 172, 174, 178, 180, 181, 182, 183, 184,
    185, 186, 188, 189, 191, 194, 195, 197, 198, 199, 200, 201, 204, 205, 208, 209, 210, 211,
    212, 216, 222, 229, 230, 233, 234, 235, 237,
)  # fmt: skip
JPEG = [cv2.IMWRITE_JPEG_QUALITY, 90]


# --- sprites: a face crop with its box, ready to paste ---------------------------------------
class Sprite:
    """A face cut from a photo (or a DCGAN tile), its face box in crop coordinates."""

    def __init__(self, img: np.ndarray, box, source: str, tags=(), photo: bool = True):
        self.img = img
        self.box = tuple(float(v) for v in box)
        self.source = source
        self.tags = list(tags)
        #: a photo patch is pasted through a feathered rectangle (its own context comes
        #: along) and enlarged at most 1.3x; a DCGAN tile through a feathered ellipse, <= 3x
        self.photo = photo
        self.max_height = (1.3 if photo else 3.0) * (self.box[3] - self.box[1])

    def flipped(self) -> Sprite:
        w = self.img.shape[1]
        x0, y0, x1, y1 = self.box
        return Sprite(
            self.img[:, ::-1].copy(),
            (w - x1, y0, w - x0, y1),
            self.source + ":flip",
            [*self.tags, "flipped"],
            self.photo,
        )


def crop_sprite(img: np.ndarray, box, source: str, tags=(), margin: float = 0.6) -> Sprite:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx0, cy0 = max(0, int(x0 - margin * w)), max(0, int(y0 - margin * h))
    cx1 = min(img.shape[1], int(math.ceil(x1 + margin * w)))
    cy1 = min(img.shape[0], int(math.ceil(y1 + margin * h)))
    return Sprite(
        img[cy0:cy1, cx0:cx1].copy(), (x0 - cx0, y0 - cy0, x1 - cx0, y1 - cy0), source, tags
    )


def paste(canvas: np.ndarray, sp: Sprite, height: float, cx: float, cy: float) -> list[float]:
    """Paste ``sp`` scaled so its face box is ``height`` px tall, the box centred at (cx, cy),
    through a feathered ellipse around the face (hair and a little context blend in). Returns
    the face box in canvas coordinates (may extend past the canvas; callers clip)."""
    bx0, by0, bx1, by1 = sp.box
    s = height / (by1 - by0)
    h, w = sp.img.shape[:2]
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    img = cv2.resize(sp.img, (nw, nh), interpolation=interp)
    sx, sy = nw / w, nh / h
    fb = [bx0 * sx, by0 * sy, bx1 * sx, by1 * sy]
    ox, oy = round(cx - (fb[0] + fb[2]) / 2), round(cy - (fb[1] + fb[3]) / 2)
    alpha = np.zeros((nh, nw), np.float32)
    if sp.photo:
        k = max(3, int(0.12 * min(nw, nh)) | 1)
        cv2.rectangle(alpha, (k // 2, k // 2), (nw - 1 - k // 2, nh - 1 - k // 2), 1.0, -1)
    else:
        ecx, ecy = (fb[0] + fb[2]) / 2, (fb[1] + fb[3]) / 2 - 0.04 * (fb[3] - fb[1])
        axes = (max(1, round(0.62 * (fb[2] - fb[0]))), max(1, round(0.64 * (fb[3] - fb[1]))))
        cv2.ellipse(alpha, (round(ecx), round(ecy)), axes, 0, 0, 360, 1.0, -1)
        k = max(3, int(0.12 * height) | 1)
    alpha = cv2.GaussianBlur(alpha, (k, k), 0)[..., None]
    H, W = canvas.shape[:2]
    x0, y0 = max(0, ox), max(0, oy)
    x1, y1 = min(W, ox + nw), min(H, oy + nh)
    if x1 > x0 and y1 > y0:
        src = img[y0 - oy : y1 - oy, x0 - ox : x1 - ox].astype(np.float32)
        a = alpha[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
        dst = canvas[y0:y1, x0:x1].astype(np.float32)
        canvas[y0:y1, x0:x1] = np.clip(a * src + (1 - a) * dst + 0.5, 0, 255).astype(np.uint8)
    return [fb[0] + ox, fb[1] + oy, fb[2] + ox, fb[3] + oy]


# --- geometry ----------------------------------------------------------------------------------
def rotated_box(box, m: np.ndarray) -> list[float]:
    """Axis-aligned box of the face after the affine rotation ``m``: the face is taken as the
    ellipse inscribed in its box, so a 45-degree turn grows the box by the ellipse's bounds,
    not by the rotated rectangle's corners (which would add ~40 % of empty corners)."""
    x0, y0, x1, y1 = box
    a, b = (x1 - x0) / 2, (y1 - y0) / 2
    c = m[:, :2] @ np.array([(x0 + x1) / 2, (y0 + y1) / 2]) + m[:, 2]
    cos, sin = m[0, 0], m[1, 0]
    n = math.hypot(cos, sin)
    cos, sin = cos / n, sin / n
    hw = n * math.sqrt((a * cos) ** 2 + (b * sin) ** 2)
    hh = n * math.sqrt((a * sin) ** 2 + (b * cos) ** 2)
    return [c[0] - hw, c[1] - hh, c[0] + hw, c[1] + hh]


def clip_box(box, w: int, h: int) -> list[float]:
    return [
        min(max(box[0], 0), w),
        min(max(box[1], 0), h),
        min(max(box[2], 0), w),
        min(max(box[3], 0), h),
    ]


def overlaps(box, boxes, pad: float) -> bool:
    for b in boxes:
        if (
            box[0] - pad < b[2]
            and b[0] < box[2] + pad
            and box[1] - pad < b[3]
            and b[1] < box[3] + pad
        ):
            return True
    return False


def inputs_sha256() -> str:
    """sha256 over this script, annotations.json and every base image: a ground_truth.json
    made from other inputs is stale."""
    h = hashlib.sha256()
    for p in [Path(__file__).resolve(), ANNOTATIONS, *sorted(BASE.rglob("*.jpg"))]:
        h.update(p.relative_to(ROOT).as_posix().encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


# --- the builder -------------------------------------------------------------------------------
class Builder:
    def __init__(self, seed: int = DEFAULT_SEED):
        self.seed = seed
        ann = json.loads(ANNOTATIONS.read_text())
        self.base: dict[str, dict] = ann["images"]
        self.photos = {n: cv2.imread(str(BASE / n), cv2.IMREAD_COLOR) for n in self.base}
        for n, im in self.photos.items():
            if im is None:
                raise SystemExit(f"missing base image {BASE / n}")
        self.bgs = {
            p.name: cv2.imread(str(p), cv2.IMREAD_COLOR)
            for p in sorted((BASE / "bg").glob("*.jpg"))
        }
        atlas = cv2.imread(str(ATLAS), cv2.IMREAD_COLOR)
        if atlas is None:
            raise SystemExit(f"missing {ATLAS} (python scripts/build_recall_set.py --make-atlas)")
        n = atlas.shape[1] // 64
        tiles = [
            atlas[r * 64 : (r + 1) * 64, c * 64 : (c + 1) * 64]
            for r in range(atlas.shape[0] // 64)
            for c in range(n)
        ]
        self.dcgan = [
            Sprite(t, DCGAN_BOX, f"dcgan#{i}", ["synthetic"], photo=False)
            for i, t in zip(DCGAN_KEPT, tiles, strict=False)
        ]
        self.real: dict[str, list[Sprite]] = {c: [] for c in SPRITE_CATEGORIES}
        for name, rec in self.base.items():
            for i, f in enumerate(rec["faces"]):
                if f.get("ignore") or f["category"] not in SPRITE_CATEGORIES:
                    continue
                sp = crop_sprite(self.photos[name], f["box"], f"{name}#{i}", f.get("tags", []))
                self.real[f["category"]].append(sp)
                if "bowed" in f.get("tags", []) and f["category"] != "bowed":
                    self.real["bowed"].append(sp)
        self.records: list[dict] = []
        self.images: dict[str, np.ndarray] = {}

    def rng(self, name: str) -> np.random.Generator:
        h = hashlib.sha256(f"{self.seed}:{name}".encode()).digest()
        return np.random.default_rng(int.from_bytes(h[:8], "big"))

    def add(self, category: str, name: str, img: np.ndarray, faces: list[dict], **extra) -> None:
        h, w = img.shape[:2]
        out = []
        for f in faces:
            box = clip_box(f["box"], w, h)
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                continue
            g = {"box": [round(v, 1) for v in box]}
            for k in ("category", "ignore", "tags", "source", "notes"):
                if f.get(k):
                    g[k] = f[k]
            out.append(g)
        file = f"generated/{category}/{name}.jpg"
        self.records.append(
            {"file": file, "category": category, "width": w, "height": h, "faces": out, **extra}
        )
        self.images[file] = img

    def face(self, box, category: str, sp_or_src, tags=()) -> dict:
        if isinstance(sp_or_src, Sprite):
            src, t = sp_or_src.source, [*sp_or_src.tags]
        else:
            src, t = sp_or_src, []
        return {
            "box": list(box),
            "category": category,
            "source": src,
            "tags": sorted(set(t) | set(tags)),
        }

    def base_faces(self, name: str, category: str | None = None, tags=()) -> list[dict]:
        """The base photo's faces, re-tagged with ``category`` (ignore regions stay)."""
        out = []
        for i, f in enumerate(self.base[name]["faces"]):
            g = {
                "box": list(f["box"]),
                "source": f"{name}#{i}",
                "tags": sorted(set(f.get("tags", [])) | set(tags)),
            }
            if f.get("ignore") or (category and f["category"] not in SPRITE_CATEGORIES):
                g["ignore"] = True  # e.g. a blurred face cut by the border: scored once, in base
            else:
                g["category"] = category or f["category"]
            out.append(g)
        return out

    def background(self, rng: np.random.Generator, size=(640, 480)) -> tuple[np.ndarray, str]:
        names = sorted(self.bgs)
        name = names[int(rng.integers(len(names)))]
        bg = self.bgs[name]
        w, h = size
        s = max(w / bg.shape[1], h / bg.shape[0])
        bg = cv2.resize(
            bg,
            (math.ceil(bg.shape[1] * s), math.ceil(bg.shape[0] * s)),
            interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC,
        )
        x = int(rng.integers(bg.shape[1] - w + 1))
        y = int(rng.integers(bg.shape[0] - h + 1))
        return bg[y : y + h, x : x + w].copy(), name

    def scatter(self, rng, canvas, sprites, heights, category, tags=(), pad=0.15):
        """Paste sprites at random places where their face boxes do not overlap."""
        H, W = canvas.shape[:2]
        faces, boxes = [], []
        for sp, hgt in zip(sprites, heights, strict=True):
            hgt = min(float(hgt), sp.max_height)
            w = hgt * (sp.box[2] - sp.box[0]) / (sp.box[3] - sp.box[1])
            for _ in range(200):
                cx = float(rng.uniform(w / 2 + 2, W - w / 2 - 2))
                cy = float(rng.uniform(hgt / 2 + 2, H - hgt / 2 - 2))
                b = [cx - w / 2, cy - hgt / 2, cx + w / 2, cy + hgt / 2]
                if not overlaps(b, boxes, pad * hgt + 2):
                    break
            else:
                continue
            box = paste(canvas, sp, hgt, cx, cy)
            boxes.append(box)
            faces.append(self.face(box, category, sp, tags))
        return faces

    # --- categories ----------------------------------------------------------------------------
    def build(self) -> dict:
        for name in self.base:
            img = self.photos[name]
            self.records.append(
                {
                    "file": f"base/{name}",
                    "category": "base",
                    "width": img.shape[1],
                    "height": img.shape[0],
                    "faces": self.base_faces(name),
                }
            )
        self.frontal()
        self.posed("profile", 15)
        self.posed("bowed", 17)
        self.tilted()
        self.edge()
        self.occluded()
        self.small()
        self.crowd()
        self.degraded("low_light")
        self.degraded("motion_blur")
        return {
            "about": "Ground truth of the face-recall benchmark; made by "
            "scripts/build_recall_set.py from base/ and annotations.json. box = [x0, y0, x1, y1] "
            "px (x1, y1 exclusive), forehead/hairline to chin; ignore: neither miss nor false "
            "positive.",
            "seed": self.seed,
            "inputs_sha256": inputs_sha256(),
            "categories": list(CATEGORIES),
            "images": self.records,
        }

    def frontal_sprites(self, rng, n: int, real_share: float = 0.35) -> list[Sprite]:
        out = []
        for _ in range(n):
            if rng.random() < real_share:
                sp = self.real["frontal"][int(rng.integers(len(self.real["frontal"])))]
            else:
                sp = self.dcgan[int(rng.integers(len(self.dcgan)))]
            out.append(sp.flipped() if rng.random() < 0.5 else sp)
        return out

    def frontal(self) -> None:
        for i in range(10):
            rng = self.rng(f"frontal{i}")
            canvas, bg = self.background(rng)
            n = int(rng.integers(3, 5))
            heights = np.exp(rng.uniform(np.log(28), np.log(170), n))
            faces = self.scatter(rng, canvas, self.frontal_sprites(rng, n), heights, "frontal")
            self.add("frontal", f"frontal_{i:02d}", canvas, faces, background=bg)

    def posed(self, category: str, n_images: int) -> None:
        """Base photos of this pose as they are and flipped, then the real faces of this pose
        (few originals) flipped and pasted at other scales on backgrounds."""
        for name in sorted(self.base):
            if not any(f.get("category") == category for f in self.base[name]["faces"]):
                continue
            img = self.photos[name][:, ::-1].copy()
            w = img.shape[1]
            faces = []
            for f in self.base_faces(name, tags=["flipped"]):
                x0, y0, x1, y1 = f["box"]
                f["box"] = [w - x1, y0, w - x0, y1]
                faces.append(f)
            self.add(category, f"{Path(name).stem}_flip", img, faces, derived_from=[name])
        pool = self.real[category] + [s.flipped() for s in self.real[category]]
        for i in range(n_images):
            rng = self.rng(f"{category}{i}")
            canvas, bg = self.background(rng)
            n = int(rng.integers(2, 4))
            sprites = [pool[int(rng.integers(len(pool)))] for _ in range(n)]
            heights = [np.exp(rng.uniform(np.log(26), np.log(sp.max_height))) for sp in sprites]
            faces = self.scatter(rng, canvas, sprites, heights, category)
            self.add(
                category,
                f"{category}_{i:02d}",
                canvas,
                faces,
                background=bg,
                notes=f"derived from {len(self.real[category])} original faces",
            )

    def frontal_photos(self) -> list[str]:
        """Photos whose only scored face is frontal (others at most blurred edge faces)."""
        return [
            n
            for n in sorted(self.base)
            if [
                f.get("category")
                for f in self.base[n]["faces"]
                if f.get("category") in SPRITE_CATEGORIES
            ]
            == ["frontal"]
        ]

    def tilted(self) -> None:
        for name in self.frontal_photos() + ["basketball1.jpg"]:
            img = self.photos[name]
            h, w = img.shape[:2]
            for ang in (-45, -30, -15, 15, 30, 45):
                s = min(1.0, 720 / max(h, w))
                m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, s)
                cos, sin = abs(m[0, 0]), abs(m[0, 1])
                nw, nh = math.ceil(w * cos + h * sin), math.ceil(w * sin + h * cos)
                m[0, 2] += nw / 2 - w / 2
                m[1, 2] += nh / 2 - h / 2
                fill = tuple(int(v) for v in img.reshape(-1, 3).mean(0))
                out = cv2.warpAffine(
                    img,
                    m,
                    (nw, nh),
                    flags=cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT,
                    borderValue=fill,
                )
                faces = []
                for f in self.base_faces(name, "tilted", [f"roll{ang:+d}"]):
                    f["box"] = rotated_box(f["box"], m)
                    faces.append(f)
                self.add(
                    "tilted",
                    f"{Path(name).stem}_r{ang:+d}",
                    out,
                    faces,
                    derived_from=[name],
                    roll=ang,
                )

    def edge(self) -> None:
        sides = ("left", "right", "bottom", "top")
        for k, name in enumerate(self.frontal_photos()):
            img = self.photos[name]
            h, w = img.shape[:2]
            (f0,) = [f for f in self.base[name]["faces"] if f.get("category") == "frontal"]
            x0, y0, x1, y1 = f0["box"]
            for j in range(3):
                side = sides[(k + j) % 4]
                frac = float(self.rng(f"edge{name}{side}").uniform(0.3, 0.6))
                if side == "left":
                    cut = round(x0 + frac * (x1 - x0))
                    out, dx, dy = img[:, cut:], -cut, 0
                elif side == "right":
                    cut = round(x1 - frac * (x1 - x0))
                    out, dx, dy = img[:, :cut], 0, 0
                elif side == "top":
                    cut = round(y0 + frac * (y1 - y0))
                    out, dx, dy = img[cut:], 0, -cut
                else:
                    cut = round(y1 - frac * (y1 - y0))
                    out, dx, dy = img[:cut], 0, 0
                face = self.face(
                    [x0 + dx, y0 + dy, x1 + dx, y1 + dy],
                    "edge",
                    f"{name}#0",
                    [f"cut_{side}", f"cut{round(frac * 100)}pct"],
                )
                others = [  # other faces of the photo stay, as ignore regions
                    {
                        "box": [
                            g["box"][0] + dx,
                            g["box"][1] + dy,
                            g["box"][2] + dx,
                            g["box"][3] + dy,
                        ],
                        "ignore": True,
                        "source": g["source"],
                    }
                    for g in self.base_faces(name, "edge")[1:]
                ]
                self.add(
                    "edge",
                    f"{Path(name).stem}_{side}",
                    out.copy(),
                    [face, *others],
                    derived_from=[name],
                    cut=round(frac, 3),
                )
        for i in range(10):
            rng = self.rng(f"edge{i}")
            canvas, bg = self.background(rng)
            H, W = canvas.shape[:2]
            faces = []
            for side, sp in zip(
                ("left", "right", "top" if i % 2 else "bottom"),
                self.frontal_sprites(rng, 3),
                strict=True,
            ):
                hgt = float(np.exp(rng.uniform(np.log(40), np.log(min(150, sp.max_height)))))
                wid = hgt * (sp.box[2] - sp.box[0]) / (sp.box[3] - sp.box[1])
                frac = float(rng.uniform(0.3, 0.6))
                if side == "left":
                    cx, cy = wid / 2 - frac * wid, rng.uniform(hgt, H - hgt)
                elif side == "right":
                    cx, cy = W - wid / 2 + frac * wid, rng.uniform(hgt, H - hgt)
                elif side == "top":
                    cx, cy = W / 2 + rng.uniform(-W / 6, W / 6), hgt / 2 - frac * hgt
                else:
                    cx, cy = W / 2 + rng.uniform(-W / 6, W / 6), H - hgt / 2 + frac * hgt
                box = paste(canvas, sp, hgt, float(cx), float(cy))
                faces.append(
                    self.face(box, "edge", sp, [f"cut_{side}", f"cut{round(frac * 100)}pct"])
                )
            self.add("edge", f"edge_{i:02d}", canvas, faces, background=bg)

    def occluded(self) -> None:
        kinds = ("hand_mouth", "hand_eyes", "mask", "hair")
        for name in self.frontal_photos() + ["basketball1.jpg"]:
            for kind in kinds:
                rng = self.rng(f"occ{name}{kind}")
                img = self.photos[name].copy()
                faces = self.base_faces(name, "occluded", [kind])
                f0 = next(f for f in faces if "frontal" in f["tags"])
                occlude(img, f0["box"], kind, rng)
                for f in faces:
                    if f is not f0 and not f.get("ignore"):
                        f["category"] = "frontal"  # the other (profile) face is not occluded
                        f["tags"] = sorted(set(f["tags"]) - {kind})
                        f["ignore"] = True  # counted in its own category already
                self.add("occluded", f"{Path(name).stem}_{kind}", img, faces, derived_from=[name])
        for i in range(6):
            rng = self.rng(f"occ{i}")
            canvas, bg = self.background(rng)
            n = 3
            heights = np.exp(rng.uniform(np.log(48), np.log(160), n))
            faces = self.scatter(
                rng, canvas, self.frontal_sprites(rng, n, 0.2), heights, "occluded"
            )
            for j, f in enumerate(faces):
                kind = kinds[(i + j) % 4]
                occlude(canvas, f["box"], kind, rng)
                f["tags"] = sorted(set(f["tags"]) | {kind})
            self.add("occluded", f"occluded_{i:02d}", canvas, faces, background=bg)

    def small(self) -> None:
        for i in range(12):
            rng = self.rng(f"small{i}")
            canvas, bg = self.background(rng)
            heights = [16, 20, 24, 32, 48, 64]
            sprites = self.frontal_sprites(rng, len(heights), 0.25)
            faces = self.scatter(rng, canvas, sprites, heights, "small", pad=0.5)
            self.add("small", f"small_{i:02d}", canvas, faces, background=bg)

    def crowd(self) -> None:
        for i in range(6):
            rng = self.rng(f"crowd{i}")
            canvas, bg = self.background(rng, (800, 600))
            n = int(rng.integers(20, 61))
            heights = np.exp(rng.uniform(np.log(16), np.log(80), n))
            heights = np.sort(heights)[::-1]  # big ones first: they find room
            sprites = self.frontal_sprites(rng, n, 0.15)
            faces = self.scatter(rng, canvas, sprites, heights, "crowd", pad=0.1)
            self.add("crowd", f"crowd_{i:02d}", canvas, faces, background=bg)

    def degraded(self, category: str) -> None:
        """Every base photo with people and the frontal composites, darkened or blurred."""
        srcs = [(r["file"], r) for r in self.records if r["category"] in ("base", "frontal")]
        for file, rec in srcs:
            img = self.images.get(file)
            if img is None:
                img = self.photos[Path(file).name]
            rng = self.rng(f"{category}{file}")
            if category == "low_light":
                out, info = darken(img, rng)
            else:
                out, info = motion_blur(img, rng)
            faces = []
            for f in rec["faces"]:
                g = dict(f, tags=sorted(set(f.get("tags", [])) | {category}))
                if g.get("category") not in (None, *SPRITE_CATEGORIES):
                    g["ignore"] = True
                    g.pop("category")
                if not g.get("ignore"):
                    g["category"] = category
                    if info.get("kernel_px", 0) > 0.5 * (f["box"][3] - f["box"][1]):
                        g["tags"] = sorted({*g["tags"], "blur_over_half_face"})
                faces.append(g)
            self.add(
                category, f"{Path(file).stem}_{category}", out, faces, derived_from=[file], **info
            )


# --- occluders and degradations ---------------------------------------------------------------
SKIN = ((92, 134, 196), (70, 110, 170), (120, 160, 215), (50, 80, 130), (80, 120, 185))


def occlude(img: np.ndarray, box, kind: str, rng: np.random.Generator) -> None:
    """Draw an occluder on a frontal face whose box runs hairline to chin (eyes at ~42 %,
    mouth at ~78 % of the height)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    sh = 8  # subpixel bits
    f = float(1 << sh)

    def pt(x, y):
        return (round(x * f), round(y * f))

    layer = img.copy()
    if kind in ("hand_mouth", "hand_eyes"):
        col = np.array(SKIN[int(rng.integers(len(SKIN)))], np.float32)
        cy = y0 + (0.8 if kind == "hand_mouth" else 0.42) * h
        ax = (0.42 * w, (0.2 if kind == "hand_mouth" else 0.16) * h)
        ang = float(rng.uniform(-20, 20))
        cv2.ellipse(
            layer,
            pt(cx + rng.uniform(-0.05, 0.05) * w, cy),
            (round(ax[0] * f), round(ax[1] * f)),
            ang,
            0,
            360,
            tuple(float(v) for v in col),
            -1,
            cv2.LINE_AA,
            sh,
        )
        # fingers: four rounded bars across the palm, a shade darker between them
        for k in range(1, 4):
            fx = cx - ax[0] + k * 0.5 * ax[0]
            cv2.line(
                layer,
                pt(fx, cy - 0.8 * ax[1]),
                pt(fx + 0.1 * ax[0], cy + 0.8 * ax[1]),
                tuple(float(v) for v in col * 0.8),
                max(1, round(0.015 * w)),
                cv2.LINE_AA,
                sh,
            )
        # shading so it is not a flat disc
        grad = np.linspace(1.08, 0.88, layer.shape[0], dtype=np.float32)[:, None, None]
        mask = np.zeros(img.shape[:2], np.uint8)
        cv2.ellipse(
            mask,
            pt(cx, cy),
            (round(ax[0] * f * 1.1), round(ax[1] * f * 1.3)),
            ang,
            0,
            360,
            255,
            -1,
            cv2.LINE_AA,
            sh,
        )
        m = mask.astype(np.float32)[..., None] / 255
        shaded = np.clip(layer.astype(np.float32) * grad, 0, 255)
        layer = (m * shaded + (1 - m) * layer.astype(np.float32)).astype(np.uint8)
    elif kind == "mask":
        col = (222, 205, 170)  # pale blue (BGR)
        top = y0 + 0.55 * h
        poly = np.array(
            [
                pt(x0 + 0.04 * w, top + 0.04 * h),
                pt(cx, top - 0.04 * h),
                pt(x1 - 0.04 * w, top + 0.04 * h),
                pt(x1 - 0.08 * w, y1 - 0.05 * h),
                pt(cx, y1 + 0.04 * h),
                pt(x0 + 0.08 * w, y1 - 0.05 * h),
            ],
            np.int32,
        )
        cv2.fillPoly(layer, [poly], col, cv2.LINE_AA, sh)
        for k in (0.35, 0.55, 0.75):  # pleats
            yy = top + k * (y1 - top)
            cv2.line(
                layer,
                pt(x0 + 0.1 * w, yy),
                pt(x1 - 0.1 * w, yy),
                (190, 175, 145),
                max(1, round(0.012 * w)),
                cv2.LINE_AA,
                sh,
            )
        for xe, xs in ((x0 - 0.02 * w, x0 + 0.05 * w), (x1 + 0.02 * w, x1 - 0.05 * w)):  # loops
            cv2.line(
                layer,
                pt(xs, top + 0.05 * h),
                pt(xe, y0 + 0.45 * h),
                (235, 235, 235),
                max(1, round(0.01 * w)),
                cv2.LINE_AA,
                sh,
            )
    elif kind == "hair":
        eye = x0 + (0.3 if rng.random() < 0.5 else 0.7) * w
        base = np.array(((20, 24, 30), (25, 40, 60), (15, 15, 15))[int(rng.integers(3))], float)
        for _ in range(int(rng.integers(14, 22))):
            xs = eye + rng.normal(0, 0.07 * w)
            bend = rng.normal(0, 0.12 * w)
            pts = []
            for t in np.linspace(0, 1, 12):
                x = xs + bend * math.sin(t * math.pi) + 0.1 * w * t
                y = y0 - 0.05 * h + t * 0.7 * h
                pts.append(pt(x, y))
            col = tuple(float(v) for v in np.clip(base + rng.normal(0, 8, 3), 0, 255))
            cv2.polylines(
                layer,
                [np.array(pts, np.int32)],
                False,
                col,
                max(1, round(rng.uniform(0.012, 0.03) * w)),
                cv2.LINE_AA,
                sh,
            )
    if np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2]):
        layer = cv2.cvtColor(cv2.cvtColor(layer, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    img[:] = layer


LUMA = np.array([0.114, 0.587, 0.299])  # BGR weights of Rec. 601 luma


def darken(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A gamma of 1.0-1.6, then an exposure cut chosen (on the channels' histograms) so that the
    mean luma lands at 25-45, then photon noise at a high ISO and read noise. (A gamma alone
    steep enough to reach luma 45 crushed dark faces to black: nothing left to find.)"""
    target = float(rng.uniform(25, 45))
    g = float(rng.uniform(1.0, 1.6))
    hist = np.stack([np.bincount(img[..., c].ravel(), minlength=256) for c in range(3)])
    weights = (LUMA[:, None] * hist).sum(0) / img[..., 0].size
    levels = (np.arange(256) / 255.0) ** g
    lo, hi = 0.0, 1.0
    for _ in range(30):
        k = (lo + hi) / 2
        if float((weights * levels * k).sum()) * 255 > target:
            hi = k
        else:
            lo = k
    y = (levels * k * 255).astype(np.float32)[img]
    # shot noise (Poisson, 0.5 photo-electrons per level: variance 2y, drawn as its normal
    # approximation) plus read noise, in one draw
    sigma = np.sqrt(2 * y + float(rng.uniform(2, 5)) ** 2)
    noise = rng.standard_normal(y.shape, dtype=np.float32) * sigma
    out = np.clip(y + noise + 0.5, 0, 255).astype(np.uint8)
    mean_luma = float((out.reshape(-1, 3) @ LUMA).mean())
    return out, {"gamma": round(g, 3), "exposure": round(k, 3), "mean_luma": round(mean_luma, 1)}


def motion_blur(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    length = int(rng.choice([9, 13, 17, 21, 25]))
    ang = float(rng.uniform(0, 180))
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    dx, dy = math.cos(math.radians(ang)) * c, math.sin(math.radians(ang)) * c
    cv2.line(
        k,
        (round((c - dx) * 16), round((c - dy) * 16)),
        (round((c + dx) * 16), round((c + dy) * 16)),
        1.0,
        1,
        cv2.LINE_AA,
        4,
    )
    k /= k.sum()
    out = cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REFLECT)
    return out, {"kernel_px": length, "angle_deg": round(ang, 1)}


# --- output ------------------------------------------------------------------------------------
def build(out: Path | None = DEFAULT_OUT, seed: int = DEFAULT_SEED) -> tuple[dict, dict]:
    """Build the set; write it under ``out`` (None: keep it in memory). Returns the ground
    truth and {file: image}."""
    b = Builder(seed)
    gt = b.build()
    if out is not None:  # written beside, then swapped in: a reader never sees half a set
        out = Path(out)
        tmp = out.with_name(f".{out.name}.{os.getpid()}")
        for file, img in b.images.items():
            p = tmp / Path(file).relative_to("generated")
            p.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(p), img, JPEG)
        (tmp / "ground_truth.json").write_text(json.dumps(gt, indent=1) + "\n")
        old = out.with_name(f".{out.name}.old.{os.getpid()}")
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    return gt, b.images


def size_band(box) -> str:
    """The face's size band by its box height, rounded to the nearest pixel (a face pasted
    at 16 px may come out 15.8 px tall after an integer resize)."""
    h = round(box[3] - box[1])
    return "<16" if h < 16 else "16-24" if h < 24 else "24-64" if h < 64 else ">=64"


def summary(gt: dict) -> dict:
    cats: dict[str, dict[str, int]] = {}
    for rec in gt["images"]:
        for f in rec["faces"]:
            if f.get("ignore"):
                continue
            band = size_band(f["box"])
            c = cats.setdefault(f["category"], {"<16": 0, "16-24": 0, "24-64": 0, ">=64": 0})
            c[band] += 1
    return {"images": len(gt["images"]), "faces": cats}


def contact_sheet(gt: dict, images: dict, path: Path, per_row: int = 6, th: int = 150) -> None:
    """Thumbnails of each category (ground-truth boxes in green, ignore regions in red),
    written as a 256-colour PNG."""
    from PIL import Image

    rows = []
    order = ["base", *CATEGORIES]
    for cat in order:
        recs = [r for r in gt["images"] if r["category"] == cat]
        if not recs:
            continue
        step = max(1, len(recs) // per_row)
        tiles = []
        for r in recs[::step][:per_row]:
            img = images.get(r["file"])
            if img is None:
                img = cv2.imread(str(DATA / r["file"]))
            img = img.copy()
            lw = max(1, round(max(img.shape[:2]) / 300))
            for f in r["faces"]:
                x0, y0, x1, y1 = (round(v) for v in f["box"])
                col = (0, 0, 255) if f.get("ignore") else (0, 255, 0)
                cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), col, lw)
            s = min(th / img.shape[0], 1.6 * th / img.shape[1])
            if s > 1:  # a thin strip (an edge crop): crop around the faces rather than enlarge
                s = 1.0
            t = cv2.resize(
                img,
                (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))),
                interpolation=cv2.INTER_AREA,
            )
            canvas = np.full((th, round(1.6 * th), 3), 255, np.uint8)
            cx = np.mean([(f["box"][0] + f["box"][2]) / 2 * s for f in r["faces"]] or [0])
            cy = np.mean([(f["box"][1] + f["box"][3]) / 2 * s for f in r["faces"]] or [0])
            x0 = int(np.clip(cx - canvas.shape[1] / 2, 0, max(0, t.shape[1] - canvas.shape[1])))
            y0 = int(np.clip(cy - th / 2, 0, max(0, t.shape[0] - th)))
            part = t[y0 : y0 + th, x0 : x0 + canvas.shape[1]]
            canvas[: part.shape[0], : part.shape[1]] = part
            tiles.append(canvas[:, : max(part.shape[1], 1)])
        row = np.hstack(
            [
                cv2.copyMakeBorder(t, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(255,) * 3)
                for t in tiles
            ]
        )
        label = np.full((22, row.shape[1], 3), 255, np.uint8)
        n = sum(1 for r in recs for f in r["faces"] if not f.get("ignore"))
        cv2.putText(
            label,
            f"{cat}: {len(recs)} images, {n} faces",
            (4, 16),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
        rows.append(np.vstack([label, row]))
    width = max(r.shape[1] for r in rows)
    sheet = np.vstack(
        [
            cv2.copyMakeBorder(
                r, 0, 0, 0, width - r.shape[1], cv2.BORDER_CONSTANT, value=(255,) * 3
            )
            for r in rows
        ]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pil = Image.fromarray(sheet[..., ::-1]).quantize(256, method=Image.Quantize.MEDIANCUT)
    pil.save(path, optimize=True)


# --- one-off imports (documented in SOURCES.md) ------------------------------------------------
OCV = Path("/usr/share/doc/opencv-doc/examples/data")  # Debian opencv-doc 4.6.0+dfsg-12


def import_base(opencv_doc: Path) -> None:
    """Copy the source photos into base/ (JPEG q90, no metadata, longer side <= 1280; the
    backgrounds <= 640)."""
    import matplotlib
    import skimage

    sk = Path(skimage.__file__).parent / "data"
    mpl = Path(matplotlib.get_data_path()) / "sample_data"
    samples = ROOT / "src" / "veilchain" / "data" / "samples"
    people = {
        "messi5.jpg": opencv_doc / "messi5.jpg",
        "basketball1.jpg": opencv_doc / "basketball1.png",
        "basketball2.jpg": opencv_doc / "basketball2.png",
        "camera.jpg": sk / "camera.png",
        "astronaut.jpg": sk / "astronaut.png",
        "grace_hopper.jpg": mpl / "grace_hopper.jpg",
        **{f"{n}.jpg": samples / f"{n}.jpg" for n in ("obama", "obama2", "obama3", "biden")},
    }
    bgs = {
        f"{n}.jpg": opencv_doc / f"{n}.jpg"
        for n in (
            "home",
            "stuff",
            "aero1",
            "aero3",
            "leuvenA",
            "board",
            "fruits",
            "aloeL",
            "squirrel_cls",
            "ela_original",
        )
    }
    bgs.update({f"{n}.jpg": sk / f"{n}.png" for n in ("coffee", "chelsea", "brick", "grass")})
    bgs["rocket.jpg"] = sk / "rocket.jpg"
    for dst, (src, longest) in {
        **{BASE / k: (v, 1280) for k, v in people.items()},
        **{BASE / "bg" / k: (v, 640) for k, v in bgs.items()},
    }.items():
        im = cv2.imread(str(src), cv2.IMREAD_COLOR)
        if im is None:
            raise SystemExit(f"cannot read {src}")
        s = longest / max(im.shape[:2])
        if s < 1:
            im = cv2.resize(
                im, (round(im.shape[1] * s), round(im.shape[0] * s)), interpolation=cv2.INTER_AREA
            )
        dst.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(dst), im, JPEG)
        print(dst, im.shape[1], "x", im.shape[0])


def make_atlas() -> None:
    """Draw dcgan_faces(240, seed=16) and keep the tiles in DCGAN_KEPT (chosen by eye)."""
    sys.path.insert(0, str(ROOT / "src"))
    from veilchain.anonymizer.corpus import dcgan_faces

    faces = dcgan_faces(DCGAN_DRAWN, seed=DCGAN_SEED, batch=DCGAN_DRAWN)[list(DCGAN_KEPT)]
    per_row = 16
    rows = -(-len(faces) // per_row)
    atlas = np.zeros((rows * 64, per_row * 64, 3), np.uint8)
    for i, f in enumerate(faces):
        r, c = divmod(i, per_row)
        atlas[r * 64 : (r + 1) * 64, c * 64 : (c + 1) * 64] = f[..., ::-1]
    cv2.imwrite(str(ATLAS), atlas, [cv2.IMWRITE_JPEG_QUALITY, 95])
    print(ATLAS.relative_to(ROOT), len(faces), "faces")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--sheet", type=Path, help="also write a contact sheet PNG here")
    ap.add_argument(
        "--import-base", action="store_true", help="copy the source photos into base/ first"
    )
    ap.add_argument(
        "--opencv-doc",
        type=Path,
        default=OCV,
        help="opencv-doc's examples/data (dpkg -x of the .deb works too)",
    )
    ap.add_argument(
        "--make-atlas",
        action="store_true",
        help="re-draw base/synthetic_faces.jpg (needs torch, gan-face-generate)",
    )
    args = ap.parse_args(argv)
    if args.import_base:
        import_base(args.opencv_doc)
    if args.make_atlas:
        make_atlas()
    gt, images = build(args.out, args.seed)
    if args.sheet:
        contact_sheet(gt, images, args.sheet)
    print(json.dumps(summary(gt), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
