"""Build the licence-plate benchmark set (bench/data/plates/): street scenes with ground truth.

    python scripts/build_plate_set.py                     # -> bench/data/plates/generated/
    python scripts/build_plate_set.py --n 40 --out /tmp/p  # a smaller set elsewhere
    python scripts/build_plate_set.py --closeups --seed 5 --n 40 --out /tmp/c
                                                          # close-ups only, 400-900 px wide

Every scene is 1280x720. Its backdrop is one of the face-recall set's backgrounds without
people (bench/data/recall/base/bg/, sources and licences in that folder's SOURCES.md), above a
road textured from skimage's CC0 ``gravel``; on the road stand 1-4 drawn cars, each carrying a
plate rendered here in one of five formats (below) with a DejaVu font, perspective-warped by a
random yaw and roll, then blurred, noised and JPEG-compressed (quality 60-95) as a camera
would. Distractors that look like plates to a text detector stand in most scenes: shop signs
with words, and a building with rows of windows. Some scenes have no plate at all, some have a
car cut by the image border, some a close-up plate 400-560 px wide.

Formats (text in the plate alphabet A-Z 0-9; separators are drawn but not part of the text):
  eu     white, blue band on the left with a country letter, "AB-123-CD" or "B MW 1234"
  uk     yellow (rear) or white (front), "AB12 CDE"
  us     2:1, white with a coloured state line on top and dark-blue text, "7ABC123"
  dark   black with white text (light on dark), "ABC 1234"
  ru     white, "A123BC" plus a boxed region code "77"

Ground truth (``ground_truth.json``): per image its file, and per plate the format, the text,
the quadrilateral (4 corner points, clockwise from top-left, in image pixels), the plate's
height in pixels (the quad's mean left/right side) and whether the border cuts it. Seeded:
two builds give the same ground truth.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
BG_DIR = ROOT / "bench" / "data" / "recall" / "base" / "bg"
DEFAULT_OUT = ROOT / "bench" / "data" / "plates" / "generated"
W, H = 1280, 720
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu")]
FORMATS = ("eu", "uk", "us", "dark", "ru")
SIGN_WORDS = [
    "CAFE",
    "BAKERY",
    "OPEN 24H",
    "PHARMACY",
    "HOTEL",
    "BOOKS",
    "PIZZA",
    "TAXI",
    "SALE 50%",
    "BANK",
    "GARAGE",
    "NO PARKING",
]


def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """A DejaVu font from Debian's fonts-dejavu, else matplotlib's bundled copy."""
    import matplotlib

    dirs = [*FONT_DIRS, Path(matplotlib.get_data_path()) / "fonts" / "ttf"]
    for d in dirs:
        if (d / name).exists():
            return ImageFont.truetype(str(d / name), size)
    return ImageFont.truetype(str(dirs[-1] / "DejaVuSans-Bold.ttf"), size)


def _pick(rng, s: str) -> str:
    return s[int(rng.integers(len(s)))]


def plate_text(fmt: str, rng) -> tuple[str, str]:
    """(text drawn with separators, ground-truth text)."""
    L = lambda n: "".join(_pick(rng, LETTERS) for _ in range(n))  # noqa: E731
    D = lambda n: "".join(_pick(rng, DIGITS) for _ in range(n))  # noqa: E731
    if fmt == "eu":
        shown = f"{L(2)}-{D(3)}-{L(2)}" if rng.random() < 0.5 else f"{L(1)} {L(2)} {D(4)}"
    elif fmt == "uk":
        shown = f"{L(2)}{D(2)} {L(3)}"
    elif fmt == "us":
        shown = f"{D(1)}{L(3)}{D(3)}"
    elif fmt == "dark":
        shown = f"{L(3)} {D(4)}"
    else:
        ru = "ABEKMHOPCTYX"
        shown = f"{_pick(rng, ru)}{D(3)}{_pick(rng, ru)}{_pick(rng, ru)}"
    return shown, "".join(c for c in shown if c.isalnum())


def render_plate(fmt: str, shown: str, rng) -> np.ndarray:
    """A flat RGB plate about 110 px tall."""
    fonts = ["DejaVuSans-Bold.ttf", "DejaVuSansCondensed-Bold.ttf", "DejaVuSansMono-Bold.ttf"]
    font_name = fonts[int(rng.integers(len(fonts)))]
    size = {
        "eu": (520, 112),
        "uk": (520, 112),
        "us": (300, 150),
        "dark": (440, 130),
        "ru": (520, 112),
    }[fmt]
    w, h = size
    bg = {
        "eu": (245, 245, 240),
        "uk": (250, 205, 30) if rng.random() < 0.6 else (245, 245, 240),
        "us": (240, 240, 235),
        "dark": (20, 20, 24),
        "ru": (245, 245, 245),
    }[fmt]
    ink = (235, 235, 235) if fmt == "dark" else ((20, 30, 90) if fmt == "us" else (15, 15, 15))
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    d.rounded_rectangle([2, 2, w - 3, h - 3], radius=8, outline=ink, width=4)
    x0, x1, y0, y1 = 10, w - 10, 8, h - 8
    if fmt == "eu":
        d.rectangle([4, 4, 48, h - 5], fill=(20, 50, 160))
        d.text(
            (26, h - 30),
            _pick(rng, "DFINLB"),
            font=_font("DejaVuSans-Bold.ttf", 26),
            fill=(240, 240, 240),
            anchor="mm",
        )
        x0 = 54
    if fmt == "us":
        state = ["SUNSHINE STATE", "GOLDEN STATE", "EMPIRE STATE", "LAKE STATE"]
        d.text(
            (w / 2, 20),
            state[int(rng.integers(4))],
            font=_font("DejaVuSans-Bold.ttf", 16),
            fill=(160, 20, 30),
            anchor="mm",
        )
        y0 = 32  # characters about 0.46 of the plate's height, as on US plates
    if fmt == "ru":
        d.rectangle([w - 120, 4, w - 5, h - 5], outline=ink, width=3)
        d.text(
            (w - 62, 44),
            f"{int(rng.integers(10, 200))}",
            font=_font(font_name, 52),
            fill=ink,
            anchor="mm",
        )
        d.text((w - 62, 92), "RUS", font=_font("DejaVuSans-Bold.ttf", 18), fill=ink, anchor="mm")
        x1 = w - 124
    # the largest font that fits the text box
    size_px = int((y1 - y0) * 0.95)
    while size_px > 10:
        f = _font(font_name, size_px)
        bx = d.textbbox((0, 0), shown, font=f)
        if bx[2] - bx[0] <= (x1 - x0) * 0.94 and bx[3] - bx[1] <= (y1 - y0) * 0.82:
            break
        size_px -= 2
    d.text(((x0 + x1) / 2, (y0 + y1) / 2), shown, font=f, fill=ink, anchor="mm")
    return np.asarray(img)


def plate_quad(cx, cy, width, height, yaw_deg, roll_deg) -> np.ndarray:
    """Corners (TL, TR, BR, BL) of a plate of ``width``x``height`` centred at (cx, cy), turned
    by ``yaw`` (the far side shrinks) and rolled by ``roll``."""
    yaw = math.radians(yaw_deg)
    half_w = width * math.cos(yaw) / 2
    far = 1.0 - 0.25 * abs(math.sin(yaw))  # the far side looks shorter
    hl, hr = (height * far / 2, height / 2) if yaw_deg > 0 else (height / 2, height * far / 2)
    pts = np.array([[-half_w, -hl], [half_w, -hr], [half_w, hr], [-half_w, hl]], np.float64)
    r = math.radians(roll_deg)
    rot = np.array([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]])
    return (pts @ rot.T + [cx, cy]).astype(np.float32)


def _paste(scene: np.ndarray, patch: np.ndarray, quad: np.ndarray) -> None:
    ph, pw = patch.shape[:2]
    src = np.float32([[0, 0], [pw - 1, 0], [pw - 1, ph - 1], [0, ph - 1]])
    m = cv2.getPerspectiveTransform(src, quad)
    warped = cv2.warpPerspective(patch, m, (W, H), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), m, (W, H), flags=cv2.INTER_AREA)
    a = (mask.astype(np.float32) / 255.0)[..., None]
    scene[:] = (scene * (1 - a) + warped * a).astype(np.uint8)


def _backdrop(rng, bgs: list[np.ndarray]) -> tuple[np.ndarray, int]:
    from skimage import data

    scene = np.zeros((H, W, 3), np.uint8)
    horizon = int(rng.integers(300, 420))
    bg = bgs[int(rng.integers(len(bgs)))]
    scene[:horizon] = cv2.resize(bg, (W, horizon), interpolation=cv2.INTER_LINEAR)
    gravel = cv2.resize(data.gravel(), (W, H - horizon))
    tone = rng.uniform(0.35, 0.6)
    road = (gravel.astype(np.float32) * tone + 30)[..., None].repeat(3, 2)
    scene[horizon:] = np.clip(road, 0, 255).astype(np.uint8)
    for x in range(0, W, 160):  # lane marks
        y = horizon + (H - horizon) // 2
        cv2.rectangle(scene, (x + 20, y - 3), (x + 100, y + 3), (230, 230, 230), -1)
    return scene, horizon


def _distractors(scene, rng, horizon) -> None:
    if rng.random() < 0.6:  # a shop sign: a light board with a word
        word = SIGN_WORDS[int(rng.integers(len(SIGN_WORDS)))]
        th = int(rng.integers(20, 60))
        f = _font("DejaVuSans-Bold.ttf", th)
        tw = int(f.getlength(word)) + 2 * th
        x, y = (
            int(rng.integers(0, max(1, W - tw))),
            int(rng.integers(10, max(11, horizon - th * 2))),
        )
        img = Image.fromarray(scene)
        d = ImageDraw.Draw(img)
        light = rng.random() < 0.5
        d.rectangle(
            [x, y, x + tw, y + int(th * 1.6)], fill=(240, 235, 220) if light else (30, 60, 40)
        )
        d.text(
            (x + th, y + th * 0.8),
            word,
            font=f,
            fill=(20, 20, 20) if light else (250, 250, 250),
            anchor="lm",
        )
        scene[:] = np.asarray(img)
    if rng.random() < 0.4:  # a building with rows of windows
        bx, bw = int(rng.integers(0, W - 300)), int(rng.integers(200, 400))
        by = int(rng.integers(0, max(1, horizon - 200)))
        cv2.rectangle(scene, (bx, by), (bx + bw, horizon), (170, 160, 150), -1)
        ww = int(rng.integers(14, 30))
        for yy in range(by + 15, horizon - 30, ww * 2):
            for xx in range(bx + 10, bx + bw - ww, int(ww * 1.6)):
                cv2.rectangle(scene, (xx, yy), (xx + ww, yy + int(ww * 1.3)), (40, 50, 70), -1)


def _car(scene, rng, cx, base_y, car_w) -> tuple[float, float]:
    """Draw a car (rear view) and return where its plate's centre goes."""
    car_h = car_w * rng.uniform(0.55, 0.75)
    color = tuple(int(c) for c in rng.integers(20, 235, 3))
    x0, x1 = int(cx - car_w / 2), int(cx + car_w / 2)
    y0, y1 = int(base_y - car_h), int(base_y)
    cv2.rectangle(
        scene,
        (x0 + int(car_w * 0.18), y0),
        (x1 - int(car_w * 0.18), y0 + int(car_h * 0.45)),
        color,
        -1,
    )
    cv2.rectangle(
        scene,
        (x0 + int(car_w * 0.24), y0 + int(car_h * 0.06)),
        (x1 - int(car_w * 0.24), y0 + int(car_h * 0.38)),
        (60, 70, 80),
        -1,
    )
    cv2.rectangle(scene, (x0, y0 + int(car_h * 0.4)), (x1, y1 - int(car_h * 0.08)), color, -1)
    for wx in (x0 + int(car_w * 0.08), x1 - int(car_w * 0.2)):
        cv2.rectangle(
            scene, (wx, y1 - int(car_h * 0.15)), (wx + int(car_w * 0.12), y1), (15, 15, 15), -1
        )
    for lx in (x0 + int(car_w * 0.05), x1 - int(car_w * 0.17)):  # tail lights
        cv2.rectangle(
            scene,
            (lx, y0 + int(car_h * 0.48)),
            (lx + int(car_w * 0.12), y0 + int(car_h * 0.6)),
            (200, 30, 30),
            -1,
        )
    return cx, y0 + car_h * 0.68


def _camera(scene, rng) -> np.ndarray:
    out = scene.astype(np.float32)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    gain = 1.0 + rng.uniform(-0.25, 0.25) * (xx / W - 0.5) + rng.uniform(-0.2, 0.2) * (yy / H - 0.5)
    out *= gain[..., None] * rng.uniform(0.7, 1.15)
    sigma = rng.uniform(0.0, 1.2)
    if sigma > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    out += rng.normal(0, rng.uniform(1, 6), out.shape)
    out = np.clip(out, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(
        ".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(60, 96))]
    )
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


def make_scene(i: int, rng, bgs, closeups: bool = False) -> tuple[np.ndarray, list[dict]]:
    """One scene and its plates. ``closeups``: every scene a close-up plate 400-900 px wide
    (the default mix has one in ten, 400-560 px wide)."""
    scene, horizon = _backdrop(rng, bgs)
    _distractors(scene, rng, horizon)
    plates: list[dict] = []
    kind = rng.random()
    if closeups:
        kind = 0.08 + 0.1 * kind
    if kind < 0.08:  # no plate
        return _camera(scene, rng), plates
    if kind < 0.18:  # a close-up plate 400-560 px wide (--closeups: 400-900)
        wide = 900 if closeups else 560
        specs = [(rng.uniform(300, 980), rng.uniform(250, 470), rng.uniform(400, wide), None)]
    else:
        n = int(rng.integers(1, 5))
        specs = []
        for k in range(n):  # one car per slot of W/n, so no car hides another's plate
            car_w = min(rng.uniform(110, 420), 0.9 * W / n)
            cx = (k + 0.5) * W / n + rng.uniform(-0.5, 0.5) * (W / n - car_w)
            if kind > 0.88 and k == 0:  # cut by the left border
                cx = rng.uniform(-0.1, 0.2) * car_w
            base_y = min(H - 5, horizon + 60 + car_w * rng.uniform(0.5, 0.9))
            specs.append((cx, base_y, car_w, "car"))
    for cx, cy, size, what in specs:
        fmt = FORMATS[int(rng.integers(len(FORMATS)))]
        shown, text = plate_text(fmt, rng)
        flat = render_plate(fmt, shown, rng)
        ratio = flat.shape[1] / flat.shape[0]
        if what == "car":
            pcx, pcy = _car(scene, rng, cx, cy, size)
            width = size * rng.uniform(0.33, 0.45) * (ratio / 4.7) ** 0.5
        else:
            pcx, pcy, width = cx, cy, size
        quad = plate_quad(pcx, pcy, width, width / ratio, rng.uniform(-35, 35), rng.uniform(-8, 8))
        _paste(scene, flat, quad)
        sides = [np.linalg.norm(quad[3] - quad[0]), np.linalg.norm(quad[2] - quad[1])]
        cut = bool(
            (quad[:, 0] < 0).any() or (quad[:, 0] > W - 1).any() or (quad[:, 1] > H - 1).any()
        )
        plates.append(
            {
                "format": fmt,
                "text": text,
                "quad": np.round(quad, 1).tolist(),
                "height_px": round(float(np.mean(sides)), 1),
                "cut": cut,
            }
        )
    return _camera(scene, rng), plates


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--n", type=int, default=160)
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument(
        "--closeups", action="store_true", help="every scene a close-up plate 400-900 px wide"
    )
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    bgs = [cv2.imread(str(p))[..., ::-1] for p in sorted(BG_DIR.glob("*.jpg"))]
    args.out.mkdir(parents=True, exist_ok=True)
    truth = []
    for i in range(args.n):
        img, plates = make_scene(i, rng, bgs, args.closeups)
        name = f"scene_{i:04d}.jpg"
        cv2.imwrite(str(args.out / name), img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
        truth.append({"file": name, "plates": plates})
    closeups = {"closeups": True} if args.closeups else {}
    (args.out / "ground_truth.json").write_text(
        json.dumps({"seed": args.seed, "images": truth} | closeups, indent=1)
    )
    n = sum(len(t["plates"]) for t in truth)
    print(json.dumps({"out": str(args.out), "images": args.n, "plates": n}))


if __name__ == "__main__":
    main()
