"""Video anonymization (.mp4, .avi) with a small tracker so each person keeps one identity.

Frames are read with OpenCV, faces detected per frame and linked to tracks greedily by box IoU
(falling back to centre distance for fast motion). Every face of a track uses the same random
key, so a generator draws the same target identity for that person in every frame. The output
keeps the frame count, size and frame rate; audio and container metadata are not copied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from veilchain.anonymizer.faces import FaceDetection
from veilchain.anonymizer.metrics import box_iou
from veilchain.errors import AnonymizationError, ImageDecodeError, InputError

VIDEO_SUFFIXES = {".mp4": "mp4v", ".avi": "MJPG"}


def is_video_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


class FaceTracker:
    """Greedy IoU / centroid tracker; tracks unseen for ``max_gap`` frames are dropped."""

    def __init__(self, *, iou_min: float = 0.3, centre_max: float = 0.5, max_gap: int = 10):
        self.iou_min, self.centre_max, self.max_gap = iou_min, centre_max, max_gap
        self._tracks: dict[int, tuple[tuple[float, ...], int]] = {}  # id -> (box, last frame)
        self._next = 0
        self._frame = -1

    def update(self, boxes: list[tuple[float, ...]]) -> list[int]:
        """Track ids for this frame's boxes (new ids for new people)."""
        self._frame += 1
        self._tracks = {t: v for t, v in self._tracks.items() if self._frame - v[1] <= self.max_gap}
        pairs = []
        for i, b in enumerate(boxes):
            for t, (tb, _) in self._tracks.items():
                iou = box_iou(b, tb)
                if iou < self.iou_min:
                    size = max(tb[2] - tb[0], 1.0)
                    cb = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
                    ct = np.array([(tb[0] + tb[2]) / 2, (tb[1] + tb[3]) / 2])
                    if np.linalg.norm(cb - ct) / size > self.centre_max:
                        continue
                    iou = 1e-3  # a weak match, after every IoU match
                pairs.append((iou, i, t))
        ids: list[int | None] = [None] * len(boxes)
        used: set[int] = set()
        for _, i, t in sorted(pairs, key=lambda p: -p[0]):
            if ids[i] is None and t not in used:
                ids[i] = t
                used.add(t)
        out: list[int] = []
        for i, matched in enumerate(ids):
            track = matched
            if track is None:
                track = self._next
                self._next += 1
            self._tracks[track] = (tuple(boxes[i]), self._frame)
            out.append(track)
        return out


@dataclass
class VideoResult:
    input: str
    output: str
    frames: int
    size: tuple[int, int]
    fps: float
    tracks: int
    n_faces: int
    n_failed: int
    frame_reports: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["frame_reports"] = d["frame_reports"][:50]
        return d


def anonymize_video(
    src: str | Path,
    dst: str | Path,
    anonymizer,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> VideoResult:
    """Anonymize every frame of ``src`` into ``dst`` (same container type, size, frame count)."""
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise InputError(f"{src}: no such file")
    if dst.suffix.lower() not in VIDEO_SUFFIXES:
        raise InputError(f"{dst}: output video must end in {', '.join(VIDEO_SUFFIXES)}")
    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        raise ImageDecodeError(f"{src}: not a readable video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    dst.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(
        str(dst), cv2.VideoWriter.fourcc(*VIDEO_SUFFIXES[dst.suffix.lower()]), fps, (w, h)
    )
    if not writer.isOpened():
        cap.release()
        raise AnonymizationError(f"{dst}: OpenCV cannot write this video format")
    tracker = FaceTracker()
    kept: dict[int, int] = {}  # track -> the attempt it kept last: its identity sticks
    frames = n_faces = n_failed = 0
    reports: list[dict[str, Any]] = []
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if bgr.shape[:2] != (h, w):
                raise ImageDecodeError(f"{src}: frame {frames} has a different size")
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            dets: list[FaceDetection] = anonymizer.detect(rgb)
            ids = tracker.update([d.box for d in dets])
            keys = [anonymizer.track_key(t) for t in ids]
            res = anonymizer.anonymize(
                rgb, detections=dets, face_keys=keys, first_attempts=[kept.get(t, 1) for t in ids]
            )
            # the tracked detections come first; faces the second look added follow them
            kept.update(
                (t, f.kept_attempt) for t, f in zip(ids, res.faces[: len(ids)], strict=True)
            )
            writer.write(cv2.cvtColor(res.image, cv2.COLOR_RGB2BGR))
            n_faces += len(res.faces)
            n_failed += len(res.failed)
            reports.append({"frame": frames, "tracks": ids, "faces": res.report["faces"]})
            frames += 1
            if progress is not None:
                progress(frames, total)
    finally:
        cap.release()
        writer.release()
    if frames == 0:
        dst.unlink(missing_ok=True)
        raise ImageDecodeError(f"{src}: the video has no readable frames")
    return VideoResult(
        str(src), str(dst), frames, (w, h), float(fps), tracker._next, n_faces, n_failed, reports
    )
