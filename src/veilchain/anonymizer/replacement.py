"""Writing one anonymized face, or one covered head, into an image in place.

These are the pixel steps of :class:`~veilchain.anonymizer.pipeline.Anonymizer`: the pipeline
decides which face gets which step, how often to retry, and what to report; the functions
here only write pixels, inside a dilated face mask (:func:`write_face`) or a head mask
(:func:`cover_head`), and leave every other pixel as it was.

A region method without a formal privacy guarantee (blur, pixelate, mask) can leave a face
as it was: blurring a near-black or flat region moves its pixels by a grey level or two, and
a black mask over a black face changes nothing. :func:`visible_cover` then adds a random step
to the whole cover, so no covered face is published unchanged. DP-Pix is left as it is (its
noise is the release its epsilon describes).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from veilchain.anonymizer.alignment import (
    DEFAULT_CROP_SIZE,
    align_face,
    face_hull,
    face_mask,
    head_box_iod,
    head_mask,
    head_roi,
    inter_ocular_distance,
    transform_points,
    warp_back,
)
from veilchain.anonymizer.blending import blend
from veilchain.anonymizer.methods import FaceGenerator, RegionMethod, is_face_generator
from veilchain.anonymizer.surround import add_grain, generated_region, relight
from veilchain.errors import AnonymizationError

#: A cover leaves a face "unchanged" when more than :data:`STILL_FRACTION` of its pixels
#: differ from the original by less than :data:`VISIBLE_LEVELS` grey levels in every channel.
#: Every pixel of such a cover is then moved by a random 2-3 times VISIBLE_LEVELS levels (the
#: same in each channel; up where the cover is dark, down where it is bright): a pixel the
#: cover had left within VISIBLE_LEVELS of the original ends at least that far from it. The
#: step is drawn independently of the original, so it adds nothing of the face back.
STILL_FRACTION = 0.25
VISIBLE_LEVELS = 6
#: A pixel counts as changed by a face's rewrite when it moved this many grey levels in some
#: channel (the recall benchmark's rule).
CHANGED_LEVELS = 3
#: Widths of the rings of photo around a generated face that its lighting (in the crop) and
#: its grain (in the image) are matched to, as fractions of the inter-ocular distance.
SURROUND_RING = 0.15
GRAIN_RING = 0.4


@dataclass(frozen=True)
class Written:
    """The region :func:`write_face` wrote, its previous pixels (to undo a failed attempt)
    and the mask inside it that now holds new pixels."""

    rows: slice
    cols: slice
    previous: np.ndarray
    mask: np.ndarray

    def undo(self, out: np.ndarray) -> None:
        out[self.rows, self.cols] = self.previous


@dataclass(frozen=True)
class FaceShape:
    """How a face's mask is drawn and blended (fractions of the inter-ocular distance)."""

    dilation: float
    feather: float
    blend_mode: str = "feather"
    crop_size: int = DEFAULT_CROP_SIZE


def _roi(mask_box: tuple[int, int, int, int], shape, pad: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = mask_box
    h, w = shape[:2]
    return max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad)


@dataclass(frozen=True)
class FacePlan:
    """What every attempt at one face shares (:func:`plan_face`): the region it may write
    (``rows``, ``cols``), the dilated mask inside it, the inter-ocular distance and, for a
    generator, the aligned crop of the working image with its transform and landmarks, the
    original's crop (the photo around the new face, whose lighting it takes) and which of
    the crop's pixels lie inside the image (the rest replicate its border)."""

    rows: slice
    cols: slice
    mask: np.ndarray
    iod: float
    crop: np.ndarray | None = None
    matrix: np.ndarray | None = None
    crop_landmarks: np.ndarray | None = None
    lighting_crop: np.ndarray | None = None
    inside: np.ndarray | None = None

    @property
    def offset(self) -> tuple[int, int]:
        return (int(self.cols.start), int(self.rows.start))


def plan_face(
    shape_hw: tuple[int, ...],
    original: np.ndarray,
    work: np.ndarray,
    lm: np.ndarray,
    method: FaceGenerator | RegionMethod,
    shape: FaceShape,
) -> FacePlan | None:
    """The region, mask and (generators) aligned crop for one face given by its landmarks,
    in an image of ``shape_hw``; None when the landmarks give no region to write. A generator
    works on the aligned crop of ``work`` (the enhanced image when dark)."""
    raw_iod = inter_ocular_distance(lm)
    iod = max(raw_iod, 2.0)
    hull = face_hull(lm)
    r = int(round(shape.dilation * raw_iod)) + 2
    lo, hi = np.floor(hull.min(0)).astype(int), np.ceil(hull.max(0)).astype(int) + 1
    x0, y0, x1, y1 = _roi((lo[0], lo[1], hi[0], hi[1]), shape_hw, r)
    if x1 <= x0 or y1 <= y0:
        return None
    size = (y1 - y0, x1 - x0)
    mask = face_mask(lm, size, dilation=shape.dilation, offset=(x0, y0))
    if not mask.any():
        return None
    rows, cols = slice(y0, y1), slice(x0, x1)
    if not is_face_generator(method):
        return FacePlan(rows, cols, mask, iod)
    crop, matrix = align_face(work, lm, shape.crop_size)
    crop_lm = transform_points(lm, matrix)
    lighting = crop if work is original else align_face(original, lm, shape.crop_size)[0]
    ones = np.full(crop.shape[:2], 255, np.uint8)
    mask = mask & (warp_back(ones, matrix, size, offset=(x0, y0)) >= 254)
    return FacePlan(rows, cols, mask, iod, crop, matrix, crop_lm, lighting,
                    _inside(matrix, crop.shape, shape_hw))  # fmt: skip


def _inside(matrix: np.ndarray, crop_shape: tuple[int, ...], shape_hw: tuple[int, ...]):
    """Which pixels of an aligned crop come from inside an image of ``shape_hw``."""
    h, w = crop_shape[:2]
    inv = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    x = inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2]
    y = inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]
    return (x >= 0) & (y >= 0) & (x <= shape_hw[1] - 1) & (y <= shape_hw[0] - 1)


def write_face(
    out: np.ndarray,
    plan: FacePlan,
    method: FaceGenerator | RegionMethod,
    shape: FaceShape,
    rng: np.random.Generator,
    embedding: np.ndarray | None,
    timing: dict[str, float],
) -> Written:
    """Write one anonymized face into ``out`` inside its planned mask.

    A generator draws a new face in the aligned crop; the face is relit to the photo around
    it, warped back, given the photo's grain (:mod:`~veilchain.anonymizer.surround`) and
    blended in, and the pixels the generator left alone stay the photo's. A region method
    rewrites the region."""
    region = out[plan.rows, plan.cols]
    mask = plan.mask
    t0 = time.perf_counter()
    if plan.crop is not None:
        assert isinstance(method, FaceGenerator), "a crop is planned for generators only"
        crop, crop_lm = plan.crop, plan.crop_landmarks
        assert crop_lm is not None and plan.matrix is not None
        assert plan.lighting_crop is not None and plan.inside is not None
        fake = np.asarray(method.generate(crop, crop_lm, rng, embedding=embedding))
        if fake.shape != crop.shape or fake.dtype != np.uint8:
            raise AnonymizationError(
                f"{method.name} returned {fake.dtype} {fake.shape}, expected uint8 {crop.shape}"
            )
        t1 = time.perf_counter()
        new = _put_in(region, fake, plan, rng)
        feather = shape.feather * plan.iod
        blended = blend(region, new, mask, feather_px=feather, mode=shape.blend_mode)
    else:
        assert isinstance(method, RegionMethod), "the pipeline admits only the two kinds"
        new = visible_cover(
            region, method.apply(region.copy(), mask, plan.iod, rng), mask, method, rng
        )
        t1 = time.perf_counter()
        blended = blend(region, new, mask, mode="hard")
    previous = region.copy()
    out[plan.rows, plan.cols] = blended
    t2 = time.perf_counter()
    timing["generate"] += t1 - t0
    timing["blend"] += t2 - t1
    return Written(plan.rows, plan.cols, previous, mask)


def _put_in(
    region: np.ndarray, fake: np.ndarray, plan: FacePlan, rng: np.random.Generator
) -> np.ndarray:
    """``region`` with the generated face of ``fake`` (an aligned crop) relit, warped back
    and grained where the generator drew; the region's own pixels everywhere else."""
    assert plan.crop is not None and plan.matrix is not None and plan.crop_landmarks is not None
    assert plan.lighting_crop is not None and plan.inside is not None
    drawn = generated_region(fake, plan.crop)
    width = max(2, int(round(SURROUND_RING * inter_ocular_distance(plan.crop_landmarks))))
    tone = face_mask(plan.crop_landmarks, fake.shape)
    lit = relight(fake, plan.lighting_crop, drawn, plan.inside, width, tone)
    face = warp_back(lit, plan.matrix, region.shape, offset=plan.offset)
    weight = warp_back(drawn, plan.matrix, region.shape, offset=plan.offset)
    touched = (weight > 0).astype(np.uint8)
    r = max(4, int(round(GRAIN_RING * plan.iod)))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    ring = (cv2.dilate(touched, k) > 0) & (touched == 0)
    grain_rng = np.random.default_rng(int(rng.integers(0, 2**63 - 1)))
    face = add_grain(face, touched > 0, region, ring, grain_rng)
    a = weight[..., None]
    out = region.astype(np.float32) * (1 - a) + face.astype(np.float32) * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def visible_cover(
    region: np.ndarray,
    new: np.ndarray,
    mask: np.ndarray,
    method: RegionMethod,
    rng: np.random.Generator,
) -> np.ndarray:
    """``new`` (a region method's pixels for ``region``), moved visibly inside ``mask`` when
    it left the face unchanged (see :data:`STILL_FRACTION`); ``new`` as it is otherwise and
    for a method with a formal privacy guarantee."""
    covered = int(mask.sum())
    if not covered or method.privacy_params().get("formal_privacy") is not None:
        return new
    moved = np.abs(new.astype(np.int16) - region.astype(np.int16)).max(axis=2)
    if int((moved[mask] < VISIBLE_LEVELS).sum()) <= STILL_FRACTION * covered:
        return new
    step = rng.integers(2 * VISIBLE_LEVELS, 3 * VISIBLE_LEVELS + 1, size=covered)
    cover = new[mask].astype(np.int16)
    sign = np.where(cover.mean(axis=1) < 128, 1, -1)
    out = new.copy()
    out[mask] = np.clip(cover + (sign * step)[:, None], 0, 255).astype(np.uint8)
    return out


def cover_head(
    out: np.ndarray,
    covered: np.ndarray,
    box: Sequence[float],
    fallback: RegionMethod,
    rng: np.random.Generator,
    timing: dict[str, float],
) -> None:
    """Rewrite the whole head around ``box`` with a region method, and mark it covered."""
    t = time.perf_counter()
    x0, y0, x1, y1 = head_roi(box, out.shape)
    if x1 <= x0 or y1 <= y0:
        return
    mask = head_mask(box, (y1 - y0, x1 - x0), offset=(x0, y0))
    region = out[y0:y1, x0:x1]
    new = fallback.apply(region.copy(), mask, head_box_iod(box), rng)
    new = visible_cover(region, new, mask, fallback, rng)
    out[y0:y1, x0:x1] = blend(region, new, mask, mode="hard")
    covered[y0:y1, x0:x1] |= mask
    timing["fallback"] += time.perf_counter() - t


def changed_share(before: np.ndarray, after: np.ndarray, box: Sequence[float]) -> float:
    """The share of ``box``'s centre (its middle 60 % x 60 %, clipped to the image) where
    ``after`` differs from ``before`` by :data:`CHANGED_LEVELS` or more in some channel (1.0
    when no pixel of the centre lies in the image)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    cx0, cx1 = max(0, round(x0 + 0.2 * w)), min(before.shape[1], round(x1 - 0.2 * w))
    cy0, cy1 = max(0, round(y0 + 0.2 * h)), min(before.shape[0], round(y1 - 0.2 * h))
    if cx1 <= cx0 or cy1 <= cy0:
        return 1.0
    a = before[cy0:cy1, cx0:cx1].astype(np.int16)
    b = after[cy0:cy1, cx0:cx1].astype(np.int16)
    return float((np.abs(a - b) >= CHANGED_LEVELS).any(axis=2).mean())
