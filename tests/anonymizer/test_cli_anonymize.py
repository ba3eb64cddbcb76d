"""`veilchain anonymize` and `veilchain evaluate` through the real CLI."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from veilchain.cli import app

runner = CliRunner()


def test_anonymize_json(tmp_path, samples_dir):
    res = runner.invoke(
        app,
        [
            "anonymize",
            str(samples_dir / "biden.jpg"),
            "-o",
            str(tmp_path),
            "--method",
            "mask",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)
    assert row["n_faces"] == 1 and row["n_failed"] == 0 and row["output"].endswith("biden.png")
    assert row["report"]["privacy_params"]["method"] == "mask"


def test_anonymize_gallery_checks_against_other_photos(tmp_path, samples_dir):
    base = ["anonymize", str(samples_dir / "obama.jpg"), "-o", str(tmp_path), "--method", "blur"]
    plain = runner.invoke(app, [*base, "--json"])
    assert plain.exit_code == 0, plain.output
    (alone,) = json.loads(plain.stdout)[0]["report"]["faces"]
    gallery = [a for n in ("obama2.jpg", "obama3.jpg") for a in ("--gallery", str(samples_dir / n))]
    res = runner.invoke(app, [*base, *gallery, "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)[0]["report"]
    (face,) = report["faces"]
    assert report["gallery_faces"] == 2
    # the blurred face is nearer to Obama's other photos than to its own source
    assert 0.6 <= face["distance"] < alone["distance"]
    res = runner.invoke(app, [*base, "--gallery", str(tmp_path / "none")])
    assert res.exit_code == 2 and "no such file" in res.output


def test_anonymize_errors(tmp_path, samples_dir):
    res = runner.invoke(app, ["anonymize", str(tmp_path / "none.jpg"), "-o", str(tmp_path)])
    assert res.exit_code == 2 and "no such file" in res.output
    res = runner.invoke(
        app, ["anonymize", str(samples_dir / "biden.jpg"), "-o", str(tmp_path), "--method", "x"]
    )
    assert res.exit_code == 2 and "unknown method" in res.output
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    res = runner.invoke(app, ["anonymize", str(bad), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "bad.jpg" in res.output  # not an image: bad input


def test_evaluate_json(tmp_path, samples_dir):
    src = tmp_path / "data"
    src.mkdir()
    for n in ("biden.jpg", "obama2.jpg"):
        (src / n).write_bytes((samples_dir / n).read_bytes())
    res = runner.invoke(
        app,
        [
            "evaluate",
            str(src),
            "-o",
            str(tmp_path / "ev"),
            "--methods",
            "pixelate,mask,dppix",
            "--epsilons",
            "1,10",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert [(r["method"], r["epsilon"]) for r in report["results"]] == [
        ("pixelate", None),
        ("mask", None),
        ("dppix", 1.0),
        ("dppix", 10.0),
    ]
    # realism figures (their meaning is tested in test_metrics.py)
    pix = report["results"][0]
    assert 0 <= pix["detail_ratio_median"] < 1 and pix["seam_score_median"] > 0
    assert 0 <= pix["detection_retention_cnn"] <= 1
    # dlib's CNN (no part of the pipeline) finds both faces on the originals, none masked
    mask = report["results"][1]
    assert mask["detection_base_mmod"] == 2 and mask["detection_retention_mmod"] == 0.0
    # the contact sheet: a header, then one row per face (2), columns original + 3 methods
    from PIL import Image

    sheet = Image.open(tmp_path / "ev" / "contact_sheet.png")
    assert sheet.size == (4 * 132, 24 + 2 * 132)
    for r in report["results"]:
        assert r["faces"] == 2 and 0 <= r["reid_rate"] <= 1 and r["ssim"] > 0.5
    for key in ("json", "curve", "grid"):
        assert (tmp_path / "ev" / report["files"][key].split("/")[-1]).is_file()


def test_evaluate_check_measures_what_the_pipeline_publishes(tmp_path, samples_dir):
    src = tmp_path / "data"
    src.mkdir()
    for n in ("biden.jpg", "obama2.jpg"):
        (src / n).write_bytes((samples_dir / n).read_bytes())
    args = ["evaluate", str(src), "-o", str(tmp_path / "ev"), "--methods", "ciagan", "--json"]
    res = runner.invoke(app, [*args, "--check"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    (row,) = report["results"]
    assert report["identity_check"] is True and any("checks on" in n for n in report["notes"])
    # every published face passed the identity check, so none is re-identified
    assert row["identity_check"] is True and row["faces"] == 2 and row["reid_rate"] == 0
    assert row["detection_retention"] == 1.0  # both checked faces are found again by HOG
    assert row["detection_retention_haar"] is not None and row["landmark_nme"] <= 0.10


def test_anonymize_astronaut_exits_0(tmp_path, samples_dir):
    """CenterFace (the default) does not take the mission patch for a face; HOG does, and the
    patch is reported as low confidence, not a failure."""
    args = ["--data-dir", str(tmp_path), "anonymize", str(samples_dir / "astronaut.jpg"), "--json"]
    res = runner.invoke(app, [*args, "-o", str(tmp_path / "cnn")])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)
    assert row["n_faces"] == 1 and row["n_failed"] == 0
    assert row["report"]["detector"]["name"] == "centerface"
    res = runner.invoke(app, [*args, "-o", str(tmp_path / "hog"), "--detector", "hog"])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)
    assert row["n_faces"] == 2 and row["n_failed"] == 0
    patch = row["report"]["faces"][1]
    assert patch["low_confidence"] is True and "score" not in patch


def test_anonymize_upsample_finds_the_small_face(tmp_path, sample):
    """HOG alone misses the small face beside a large one (unless upsampled); CenterFace, and
    the second look after HOG, anonymize it."""
    from PIL import Image

    from tests.anonymizer.test_faces import _large_and_small_face
    from veilchain.anonymizer.detectors import CenterFaceDetector

    img = _large_and_small_face(sample)
    src = tmp_path / "two.png"
    Image.fromarray(img).save(src)
    small = min(CenterFaceDetector().detect_faces(img), key=lambda f: f.height).box
    x0, y0, x1, y1 = (int(v) for v in small)
    hog = ["--detector", "hog"]
    cases = (([], True), ([*hog, "--no-second-look"], False), (hog, True),
             ([*hog, "--upsample", "1", "--no-second-look"], True))  # fmt: skip
    for n, (flag, changed) in enumerate(cases):
        out = tmp_path / f"o{n}"
        args = ["anonymize", str(src), "-o", str(out), "--method", "blur", "--json", *flag]
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        after = np.asarray(Image.open(out / "two.png"))
        diff = np.abs(after[y0:y1, x0:x1].astype(int) - img[y0:y1, x0:x1].astype(int))
        assert (diff.max() >= 3) == changed, flag


def test_contact_sheet_lays_blocks_side_by_side(tmp_path):
    """Several dicts of crops become blocks side by side (the model card's grid), each with
    its own columns; the rows are the longest block's."""
    from PIL import Image

    from veilchain.anonymizer.evaluation_plots import write_contact_sheet

    crop = np.full((128, 128, 3), 90, np.uint8)
    blocks = [{"a": [crop] * 2, "b": [crop] * 2}, {"c": [crop] * 3, "d": [crop] * 3}]
    write_contact_sheet(blocks, tmp_path / "grid.png")
    assert Image.open(tmp_path / "grid.png").size == (4 * 132 + 16, 24 + 3 * 132)
    write_contact_sheet(blocks[0], tmp_path / "one.png")
    assert Image.open(tmp_path / "one.png").size == (2 * 132, 24 + 2 * 132)


def test_anonymize_table_counts_plates_and_those_ruled_out(tmp_path, samples_dir, monkeypatch):
    """The human-readable table has a plates column when the plates stage runs: plates
    redrawn, and candidates on people ruled out (biden.jpg: a tie and a collar)."""
    from veilchain.cli import output

    monkeypatch.setattr(output.out, "width", 200)  # one line per row: cells are not folded
    args = ["anonymize", str(samples_dir / "biden.jpg"), "-o", str(tmp_path), "--method", "mask"]
    shown = runner.invoke(app, [*args, "--identifiers", "faces,plates"])
    assert shown.exit_code == 0, shown.output
    header = next(line for line in shown.output.splitlines() if "input" in line)
    assert "plates" in header
    (row,) = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    rep = row["report"]
    ruled = sum(rep["plates_ruled_out"].values())
    assert ruled >= 1 and f"{rep['n_plates']} ({ruled} ruled out)" in shown.output
    faces_only = runner.invoke(app, [*args, "--identifiers", "faces"])
    header = next(line for line in faces_only.output.splitlines() if "input" in line)
    assert "plates" not in header
