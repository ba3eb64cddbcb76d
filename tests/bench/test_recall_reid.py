"""bench/recall.py --reid: dlib's recognizer re-identifies a face the output left as it was
and not one the output masked, against a gallery of every original face."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from veilchain.anonymizer.image_io import load_image

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "bench" / "data" / "recall"


def _recall():
    spec = importlib.util.spec_from_file_location("recall_bench", ROOT / "bench" / "recall.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reid_finds_the_faces_left_as_they_were_and_not_a_masked_one():
    notes = json.loads((DATA / "annotations.json").read_text())["images"]
    reid = _recall().Reid()
    for name in ("astronaut.jpg", "biden.jpg", "obama.jpg", "grace_hopper.jpg"):
        img = load_image(DATA / "base" / name)
        faces = [{**f, "source": f"{name}#{i}"} for i, f in enumerate(notes[name]["faces"])]
        out = img.copy()
        if name == "biden.jpg":  # the whole face box grey: nothing of the face is left
            x0, y0, x1, y1 = (int(v) for v in faces[0]["box"])
            out[y0:y1, x0:x1] = 128
        reid.add(name, faces, img, out)
    rep = reid.report(unchanged=["astronaut.jpg#0", "obama.jpg#0", "grace_hopper.jpg#0"])
    left = ["astronaut.jpg#0", "obama.jpg#0", "grace_hopper.jpg#0"]
    assert rep["faces"] == 4 and rep["identities"] == 4
    assert rep["rank1_faces"] == left and rep["same_photo_faces"] == left
    assert rep["rank1_rate"] == 0.75 and rep["rank1_unchanged"] == 3
    assert np.isclose(rep["same_photo_rate"], 0.75)
