"""`veilchain fetch` and `veilchain verify --images` check the Content Credentials of the
decrypted images (exit 1 when they do not check)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _run(data_dir, *args):
    """The CLI in its own process (the embedded chain belongs to one process at a time)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILCHAIN_")}
    env.update(PYTHONPATH=str(ROOT / "src"), PYTHONWARNINGS="ignore", VEILCHAIN_ENV="test")
    r = subprocess.run(
        [sys.executable, "-m", "veilchain.cli", "--data-dir", str(data_dir), *args],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    return r.returncode, r.stdout + r.stderr


@pytest.fixture(scope="module")
def granted(tmp_path_factory, sample_inputs):
    d = tmp_path_factory.mktemp("cli-c2pa")
    rc, text = _run(d, "register", str(sample_inputs), "--name", "cli set", "--method", "blur",
                    "--allow-recognizable", "--json")  # fmt: skip
    assert rc == 0, text
    rc, text = _run(d, "account", "alice", "--json")
    assert rc == 0, text
    rc, text = _run(d, "grant", "1", "--to", json.loads(text)["address"], "--days", "1")
    assert rc == 0, text
    return d


def test_fetch_prints_the_credentials(granted, tmp_path) -> None:
    rc, text = _run(granted, "fetch", "1", "--image", "1", "--as", "alice",
                    "-o", str(tmp_path / "one.png"))  # fmt: skip
    assert rc == 0, text
    assert "Content Credentials: anonymized with blur, ε –, by Veilchain development " in text
    assert "anchored in data set 1 v1" in text


def test_verify_images_checks_every_image_and_names_a_bad_one(granted) -> None:
    rc, text = _run(granted, "verify", "1", "--images", "--as", "alice", "--json")
    assert rc == 0, text
    report = json.loads(text)
    assert report["ok"] and report["credentials_checked"] == 3
    rc, text = _run(granted, "verify", "1", "--images")
    assert rc == 2 and "--as NAME" in text


def test_anonymize_signs_image_and_mp4_outputs(tmp_path) -> None:
    import shutil

    import cv2
    import numpy as np

    from veilchain.config import Settings
    from veilchain.platform.demo import samples_dir
    from veilchain.platform.provenance import load_signing_identity, read_credentials

    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(samples_dir() / "obama.jpg", src / "portrait.jpg")
    writer = cv2.VideoWriter(str(src / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5, (96, 64))
    for i in range(5):
        writer.write((np.random.default_rng(i).random((64, 96, 3)) * 255).astype(np.uint8))
    writer.release()
    d, out = tmp_path / "dd", tmp_path / "out"
    rc, text = _run(d, "anonymize", str(src), "-o", str(out), "--method", "blur",
                    "--credentials", "--json")  # fmt: skip
    assert rc == 0, text
    ca = load_signing_identity(Settings(data_dir=d, env="test")).ca_pem.decode()
    for name, mime in (("portrait.png", "image/png"), ("clip.mp4", "video/mp4")):
        creds = read_credentials((out / name).read_bytes(), trust_pem=ca, mime=mime)
        assert creds.state == "Trusted" and creds.method == "blur", (name, creds)
        assert creds.anchor is None and creds.ingredients == 0 and not creds.has_thumbnail
    rc, _ = _run(d, "anonymize", str(src), "-o", str(tmp_path / "plain"), "--method", "blur")
    assert rc == 0
    assert not read_credentials((tmp_path / "plain" / "portrait.png").read_bytes()).present
