"""The checks on one face's attempts: landmark shift, identity distance and "still a face".

The pipeline writes an attempt, keeps its pixels as a :class:`Trial` and asks
:class:`FaceChecks` whether it can be kept. The costly checks run lazily, with the same
outcome as running all three on every attempt: an attempt whose landmarks moved too far
cannot be accepted, so its embedding and HOG wait until no attempt is (:meth:`FaceChecks.pick`),
and HOG runs only on a face the recognizer no longer matches."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from veilchain.anonymizer.detectors import landmark_box
from veilchain.anonymizer.embedding import FaceEmbedder, face_distance
from veilchain.anonymizer.faces import (
    FaceDetection,
    HogDetector,
    enhance_low_light,
    landmarks_for_box,
)
from veilchain.anonymizer.metrics import landmark_displacement
from veilchain.anonymizer.report import AttemptCheck


@dataclass
class Trial:
    """One attempt at a face: where it came in the order of attempts, its pixels (the
    written region), its new face's landmarks and what the checks found so far (None: not
    run yet, or not a check this method gets)."""

    position: int
    pixels: np.ndarray
    landmarks: np.ndarray
    displacement: float | None
    distance: float | None = None
    detected: bool | None = None
    #: the enhanced view of a dark image while ``out`` holds this attempt (None otherwise)
    seen: np.ndarray | None = None

    def passed(self, threshold: float) -> bool:
        return self.distance is not None and self.distance >= threshold

    def check(self, threshold: float) -> AttemptCheck:
        passed = None if self.distance is None else self.distance >= threshold
        return AttemptCheck(self.distance, passed, self.detected, self.displacement)


@dataclass
class FaceChecks:
    """The checks for one detected face, whose attempts are written to ``out[rows, cols]``.

    ``face_checker`` is set for a generator only (HOG must still find a face there, and
    ``tolerance`` bounds the landmark shift); ``original`` is the original face's embedding
    and ``gallery`` other known faces, the nearest of which counts."""

    embedder: FaceEmbedder
    face_checker: HogDetector | None
    gallery: np.ndarray | None
    threshold: float
    tolerance: float | None
    out: np.ndarray
    rows: slice
    cols: slice
    low_light: bool
    det: FaceDetection
    original: np.ndarray
    timing: dict[str, float]

    def view(self) -> np.ndarray:
        """The output as the checks (and an attacker) see it: enhanced when dark."""
        return enhance_low_light(self.out) if self.low_light else self.out

    def trial(self, position: int) -> Trial:
        """The attempt ``out`` holds now, its pixels kept, with its new face's 68 landmarks
        and (generators) how far they moved; the costlier checks run on demand."""
        t = time.perf_counter()
        seen = self.view()
        lm = landmarks_for_box(seen, landmark_box(self.det))
        displacement = None
        if self.face_checker is not None:
            displacement = landmark_displacement(self.det.landmarks, lm)
        pixels = self.out[self.rows, self.cols].copy()
        self.timing["identity"] += time.perf_counter() - t
        return Trial(position, pixels, lm, displacement, seen=seen if self.low_light else None)

    def measure(self, trial: Trial, what: str) -> None:
        """Run one check on ``trial`` unless it already ran: ``"identity"`` (embed the new
        face as an attacker would and measure its distance) or ``"face"`` (generators: does
        HOG still find it). ``out`` is given the trial's pixels first."""
        if (what == "identity" and trial.distance is not None) or (
            what == "face" and (trial.detected is not None or self.face_checker is None)
        ):
            return
        t = time.perf_counter()
        seen = trial.seen
        if seen is None:
            self.out[self.rows, self.cols] = trial.pixels
            seen = self.view()
        if what == "identity":
            new_emb = self.embedder.embed(seen, [trial.landmarks])
            distance = float(face_distance(new_emb, self.original)[0, 0])
            if self.gallery is not None:  # the nearest known face counts
                distance = min(distance, float(face_distance(new_emb, self.gallery).min()))
            trial.distance = distance
        else:
            assert self.face_checker is not None
            trial.detected = self.face_checker.redetects(seen, landmark_box(self.det))
        self.timing["identity"] += time.perf_counter() - t

    def accepts_now(self, trial: Trial) -> bool:
        """Whether ``trial`` can be kept at once: its landmarks moved little enough (only
        then do its identity and face checks run now), it is not recognized, and HOG still
        finds a face there."""
        tol = self.tolerance
        if tol is not None and trial.displacement is not None and trial.displacement > tol:
            return False
        self.measure(trial, "identity")
        if trial.passed(self.threshold):
            self.measure(trial, "face")
        return trial.check(self.threshold).acceptable(tol)

    def pick(self, trials: list[Trial]) -> Trial:
        """The attempt of best :meth:`AttemptCheck.rank` (the earliest on ties) when none was
        acceptable, running only the checks the ranking needs. Without a landmark tolerance
        every attempt's distance is known and ranks alone. With one: an unrecognized face
        HOG finds beats every other, and among those the least landmark shift wins, so the
        attempts are taken in order of shift until one is; else an unrecognized one (least
        shift), else the recognized ones ranked by HOG and distance."""
        thr, tol = self.threshold, self.tolerance

        def rank(t: Trial) -> tuple:
            return (t.check(thr).rank(tol), -t.position)

        if tol is None:
            return max(trials, key=rank)
        by_shift = sorted(trials, key=lambda t: (t.displacement or 0.0, t.position))
        for trial in by_shift:
            self.measure(trial, "identity")
            if trial.passed(thr):
                self.measure(trial, "face")
                if trial.detected is not False:
                    return trial
        unrecognized = [t for t in by_shift if t.passed(thr)]
        if unrecognized:
            return unrecognized[0]
        for trial in trials:
            self.measure(trial, "face")
        return max(trials, key=rank)
