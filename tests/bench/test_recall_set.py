"""The face-recall benchmark set (bench/data/recall/) builds deterministically and its ground
truth is sane. Builds in memory (~1.5 s each); needs no detector and no veilchain code."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "bench" / "data" / "recall"
MIN_FACES_24PX = {  # faces >= 24 px tall per category (profile and bowed: few originals)
    "frontal": 40,
    "profile": 40,
    "bowed": 40,
    "tilted": 40,
    "edge": 40,
    "occluded": 40,
    "small": 40,
    "crowd": 100,
    "low_light": 40,
    "motion_blur": 40,
}


def _builder():
    spec = importlib.util.spec_from_file_location(
        "build_recall_set", ROOT / "scripts" / "build_recall_set.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def builder():
    return _builder()


@pytest.fixture(scope="module")
def built(builder):
    return builder.build(None)


def test_two_builds_give_identical_ground_truth(builder, built):
    gt1, images1 = built
    gt2, images2 = builder.build(None)
    assert json.dumps(gt1, sort_keys=True) == json.dumps(gt2, sort_keys=True)
    assert images1.keys() == images2.keys()
    for k in list(images1)[::15]:  # pixels too (a sample: same OpenCV, same process)
        assert (images1[k] == images2[k]).all(), k


def test_every_box_lies_inside_its_image(built):
    gt, images = built
    assert len(gt["images"]) > 150
    for rec in gt["images"]:
        w, h = rec["width"], rec["height"]
        img = images.get(rec["file"])
        if img is not None:
            assert img.shape[:2] == (h, w), rec["file"]
        for f in rec["faces"]:
            x0, y0, x1, y1 = f["box"]
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, (rec["file"], f["box"])
            assert f.get("ignore") or f["category"] in gt["categories"], (rec["file"], f)


def test_every_category_has_enough_faces_of_24_px_or_more(builder, built):
    gt, _ = built
    faces = builder.summary(gt)["faces"]
    for cat, n in MIN_FACES_24PX.items():
        got = faces[cat]["24-64"] + faces[cat][">=64"]
        assert got >= n, (cat, got)
    assert faces["small"]["16-24"] >= 20  # and the small band is exercised
    assert faces["crowd"]["16-24"] >= 20


def test_categories_do_what_they_say(built):
    gt, _ = built
    by = {}
    for rec in gt["images"]:
        by.setdefault(rec["category"], []).append(rec)
    assert all(r["mean_luma"] < 50 for r in by["low_light"])
    assert all(9 <= r["kernel_px"] <= 25 for r in by["motion_blur"])
    assert {r["roll"] for r in by["tilted"]} == {-45, -30, -15, 15, 30, 45}
    assert all(0.3 <= r["cut"] <= 0.6 for r in by["edge"] if "cut" in r)
    for r in by["crowd"]:
        n = sum(1 for f in r["faces"] if not f.get("ignore"))
        assert 20 <= n <= 60, (r["file"], n)


def test_annotated_images_exist_and_boxes_fit(builder):
    ann = json.loads((DATA / "annotations.json").read_text())["images"]
    assert len(ann) >= 10
    import cv2

    for name, rec in ann.items():
        img = cv2.imread(str(DATA / "base" / name))
        assert img is not None, name
        h, w = img.shape[:2]
        assert max(h, w) <= 1280
        assert rec["faces"], name
        for f in rec["faces"]:
            x0, y0, x1, y1 = f["box"]
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, (name, f)
            assert f.get("ignore") or f["category"] in builder.CATEGORIES
    assert (DATA / "base" / "synthetic_faces.jpg").exists()
    assert len(list((DATA / "base" / "bg").glob("*.jpg"))) >= 10
