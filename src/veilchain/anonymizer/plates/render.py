"""Draw a synthetic plate with new text and put it where the old one was.

The new plate takes from the original only low-dimensional appearance: its ground and ink
colours (medians of the two tone clusters) and its lighting (a plane fitted to the ground's
brightness, plus the ground's noise level). It is drawn flat with a DejaVu font (Debian's
``fonts-dejavu-core``, else matplotlib's bundled copy), given that lighting, perspective-warped
to the detected quadrilateral widened by a margin, and blended with a 1-2 px feather. Every
pixel inside the widened quadrilateral is rewritten, so none of the old characters survives.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from veilchain.anonymizer.plates.ocr import rectify

FONT_FILE = "DejaVuSans-Bold.ttf"
_DEBIAN_FONTS = Path("/usr/share/fonts/truetype/dejavu")
#: Margin added around the detected quadrilateral, as a fraction of the plate's height.
DEFAULT_MARGIN = 0.12
_FLAT_H = 96


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    path = _DEBIAN_FONTS / FONT_FILE
    if not path.exists():
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / FONT_FILE
    return ImageFont.truetype(str(path), size)


def font_path() -> str:
    """Which font file draws the plates (recorded in the report)."""
    p = _DEBIAN_FONTS / FONT_FILE
    return str(p) if p.exists() else f"matplotlib/{FONT_FILE}"


@dataclass(frozen=True)
class PlateLook:
    """What the new plate keeps of the old one: two colours and the lighting plane."""

    ground: tuple[int, int, int]
    ink: tuple[int, int, int]
    plane: tuple[float, float, float]  # brightness gain = a + b*u + c*v, u, v in [-1, 1]
    noise: float


def measure_look(image: np.ndarray, quad: np.ndarray, dark_text: bool) -> PlateLook:
    """The plate's ground and ink colours, lighting plane and noise level."""
    flat = rectify(image, quad, 32).astype(np.float32)
    lum = flat.mean(2)
    lo, hi = np.percentile(lum, [10, 90])
    mid = (lo + hi) / 2
    ground_mask = lum > mid if dark_text else lum <= mid
    if ground_mask.sum() < 8 or (~ground_mask).sum() < 4 or hi - lo < 8:
        c = np.median(flat.reshape(-1, 3), 0)
        col = (int(c[0]), int(c[1]), int(c[2]))
        ink = (255 - col[0], 255 - col[1], 255 - col[2])
        return PlateLook(col, ink, (1.0, 0.0, 0.0), 2.0)
    g, k = np.median(flat[ground_mask], 0), np.median(flat[~ground_mask], 0)
    ground = (int(g[0]), int(g[1]), int(g[2]))
    ink = (int(k[0]), int(k[1]), int(k[2]))
    h, w = lum.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = u / max(w - 1, 1) * 2 - 1, v / max(h - 1, 1) * 2 - 1
    a = np.stack([np.ones(ground_mask.sum()), u[ground_mask], v[ground_mask]], 1)
    y = lum[ground_mask]
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    resid = y - a @ coef
    base = max(float(coef[0]), 1.0)
    plane = (
        1.0,
        float(np.clip(coef[1] / base, -0.5, 0.5)),
        float(np.clip(coef[2] / base, -0.5, 0.5)),
    )
    return PlateLook(ground, ink, plane, float(min(np.std(resid), 12.0)))


def draw_flat(text: str, aspect: float, look: PlateLook) -> np.ndarray:
    """An upright plate _FLAT_H px tall with ``text`` centred, a border, ``look``'s colours."""
    h = _FLAT_H
    w = max(int(round(h * aspect)), h)
    img = Image.new("RGB", (w, h), look.ground)
    d = ImageDraw.Draw(img)
    d.rounded_rectangle([1, 1, w - 2, h - 2], radius=6, outline=look.ink, width=3)
    size = int(h * 0.7)
    while size > 8:
        f = _font(size)
        x0, y0, x1, y1 = d.textbbox((0, 0), text, font=f)
        if x1 - x0 <= 0.9 * w and y1 - y0 <= 0.72 * h:
            break
        size -= 2
    if text:
        d.text((w / 2, h / 2), text, font=_font(size), fill=look.ink, anchor="mm")
    return np.asarray(img)


def widen(quad: np.ndarray, margin_px: float) -> np.ndarray:
    """``quad`` pushed outwards by ``margin_px`` along its own axes."""
    q = np.asarray(quad, np.float64)
    c = q.mean(0)
    ux = (q[1] - q[0] + q[2] - q[3]) / 2
    uy = (q[3] - q[0] + q[2] - q[1]) / 2
    ux /= max(np.linalg.norm(ux), 1e-6)
    uy /= max(np.linalg.norm(uy), 1e-6)
    signs = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)
    out = q + margin_px * (signs[:, :1] * ux + signs[:, 1:] * uy)
    # keep the corners on the right side of the centre even for tiny quads
    return np.where(np.sign(out - c) == np.sign(q - c), out, q).astype(np.float32)


@dataclass(frozen=True)
class Drawn:
    """The pixels a plate drawing rewrote: ``mask`` (bool) over the image's box ``rows``,
    ``cols`` (the drawings work in that box, not over the whole image)."""

    rows: slice
    cols: slice
    mask: np.ndarray


def _cover(shape: tuple[int, ...], big: np.ndarray) -> tuple[Drawn, np.ndarray]:
    """The quad ``big`` filled and grown by a pixel (no rim of old pixels), clipped to an
    image of ``shape``, in its own box: the box and mask, and the cover as uint8 (0/255)."""
    H, W = shape[:2]
    x0 = min(max(int(np.floor(big[:, 0].min())) - 2, 0), W)
    y0 = min(max(int(np.floor(big[:, 1].min())) - 2, 0), H)
    x1 = max(min(int(np.ceil(big[:, 0].max())) + 3, W), x0)
    y1 = max(min(int(np.ceil(big[:, 1].max())) + 3, H), y0)
    cover = np.zeros((y1 - y0, x1 - x0), np.uint8)
    if cover.size:
        corners = (np.round(big) - [x0, y0]).astype(np.int32)
        cv2.fillConvexPoly(cover, corners, 255)
        cover = cv2.dilate(cover, np.ones((3, 3), np.uint8))  # type: ignore[assignment]  # cv2 stubs widen the dtype
    return Drawn(slice(y0, y1), slice(x0, x1), cover > 0), cover


def paste_plate(
    out: np.ndarray,
    quad: np.ndarray,
    text: str,
    look: PlateLook,
    rng: np.random.Generator,
    margin: float = DEFAULT_MARGIN,
) -> Drawn:
    """Draw the new plate over ``quad`` (widened) in ``out`` (in place); returns the pixels
    it rewrote."""
    q = np.asarray(quad, np.float32)
    height = float(np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    width = float(np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])) / 2
    big = widen(q, max(2.0, margin * height))
    flat = draw_flat(text, width / max(height, 1.0), look).astype(np.float32)
    fh, fw = flat.shape[:2]
    v, u = np.mgrid[0:fh, 0:fw].astype(np.float32)
    u, v = u / max(fw - 1, 1) * 2 - 1, v / max(fh - 1, 1) * 2 - 1
    gain = look.plane[0] + look.plane[1] * u + look.plane[2] * v
    flat = flat * gain[..., None]
    drawn, cover = _cover(out.shape, big)
    if not drawn.mask.any():
        return drawn
    y0, x0 = drawn.rows.start, drawn.cols.start
    bh, bw = cover.shape
    sl = (drawn.rows, drawn.cols)
    # warp straight into the plate's bounding box, not the whole image
    src = np.array([[0, 0], [fw - 1, 0], [fw - 1, fh - 1], [0, fh - 1]], np.float32)
    m = cv2.getPerspectiveTransform(src, (big - [x0, y0]).astype(np.float32))
    patch = cv2.warpPerspective(flat, m, (bw, bh), flags=cv2.INTER_AREA)
    # pixels the plate's warp left empty at the rim take the ground colour
    empty = cv2.warpPerspective(np.ones((fh, fw), np.float32), m, (bw, bh)) < 0.5
    patch[empty] = np.array(look.ground, np.float32)
    patch += np.asarray(rng.normal(0.0, look.noise, patch.shape), np.float32)
    inner = cv2.erode(cover, np.ones((3, 3), np.uint8))
    alpha = cv2.GaussianBlur(inner.astype(np.float32) / 255.0, (3, 3), 0)
    alpha[cover > 0] = np.maximum(alpha[cover > 0], 0.6)  # every covered pixel moves
    alpha = alpha[..., None]
    region = out[sl].astype(np.float32)
    out[sl] = np.clip(region * (1 - alpha) + patch * alpha, 0, 255).astype(np.uint8)
    return drawn


def mask_plate(out: np.ndarray, quad: np.ndarray, look: PlateLook | None = None) -> Drawn:
    """Fill the (widened) quad with one flat colour: the fallback when no plate can be drawn.
    Returns the pixels it rewrote."""
    q = np.asarray(quad, np.float32)
    height = float(np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    drawn, _ = _cover(out.shape, widen(q, max(2.0, DEFAULT_MARGIN * height)))
    color = np.array(look.ground if look else (128, 128, 128), np.uint8)
    out[drawn.rows, drawn.cols][drawn.mask] = color
    return drawn
