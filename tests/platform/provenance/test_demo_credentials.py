"""`veilchain demo` (what `make demo` runs): every image it registers carries Content
Credentials that the independent reader validates, untrusted until given the data set's CA,
and none of them holds anything derived from the sample photos."""

from __future__ import annotations

import json

from tests.platform.provenance.test_cli_credentials import _run
from tests.platform.provenance.test_credentials import independent, manifest_leaks
from veilchain.platform.demo import samples_dir


def test_every_demo_image_validates_in_the_independent_reader(tmp_path) -> None:
    d = tmp_path / "demo"
    rc, text = _run(d, "demo", "--json")
    assert rc == 0, text
    summary, _ = json.JSONDecoder().raw_decode(text[text.index("{") :])
    step = next(s for s in summary["steps"] if s["step"] == "content credentials")
    assert step["ok"], step
    out = d / "demo-credentials"
    images = sorted(out.glob("0*.png"))
    originals = sorted(samples_dir().glob("*.jpg"))
    assert len(images) == summary["registration"]["records"] == len(originals)
    rc, untrusted = independent(images)
    assert rc == 0 and {r["state"] for r in untrusted} == {"Valid"}
    assert all(r["failures"] == ["signingCredential.untrusted"] for r in untrusted)
    rc, trusted = independent(images, trust=out / "ca.pem")
    assert rc == 0 and {r["state"] for r in trusted} == {"Trusted"}
    assert [r["anchor"]["image_index"] for r in trusted] == list(range(len(images)))
    leaks = [
        (img.name, orig.name, found)
        for img in images
        for orig in originals
        if (found := manifest_leaks(img.read_bytes(), orig.read_bytes(), orig.name))
    ]
    assert leaks == []
