"""One input collector for anonymize, register and the gallery."""

from __future__ import annotations

import pytest

from veilchain.anonymizer.files import collect_inputs
from veilchain.errors import InputError


def test_one_collector_for_anonymize_and_register(tmp_path):
    for name in ("a.gif", "b.ppm", "c.JPG", "d.mp4", ".hidden.png", "notes.txt", "sub/e.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    every = [f.name for f, _ in collect_inputs([tmp_path])]
    assert every == ["a.gif", "b.ppm", "c.JPG", "d.mp4", "e.png"]  # register used to skip a, b
    images = [f.name for f, _ in collect_inputs([tmp_path], videos=False)]
    assert images == ["a.gif", "b.ppm", "c.JPG", "e.png"]
    assert [str(rel) for _, rel in collect_inputs([tmp_path / "sub"])] == ["e"]
    with pytest.raises(InputError, match="no such file or folder"):
        collect_inputs([tmp_path / "missing"])
