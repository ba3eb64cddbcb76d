"""Manifest.write_streaming writes exactly Manifest.to_bytes (format 2)."""

from __future__ import annotations

import io

from veilchain.chain.merkle import build_merkle_tree
from veilchain.platform.manifest import ImageRecord, Manifest


def test_streamed_bytes_equal_to_bytes():
    recs = [
        ImageRecord(index=i, image_id=f"{i:06d}", cid=f"bafk{i}", ciphertext_sha256="ab" * 32,
                    anonymized_sha256="cd" * 32, size=10 + i, width=3, height=4,
                    report={"faces": [{"score": 0.5, "n": i, "passed": True}], "x": 1.5})
        for i in range(5)
    ]  # fmt: skip
    tree = build_merkle_tree([r.leaf() for r in recs])
    proofs = [["0x" + p.hex() for p in tree.proof(i)] for i in range(5)]
    m = Manifest(dataset_uid="u", name="n é", institution="0x1", chain_id=1337, contract="0x2",
                 method="blur", model_hash="0x" + "00" * 32, params={"epsilon": 1.0, "seed": 2},
                 merkle_root="0x" + tree.root.hex(), records=recs, proofs=proofs,
                 previous_manifest_cid=None, created_at="2026-12-03T00:00:00Z")  # fmt: skip
    fh = io.BytesIO()
    Manifest(**{**m.__dict__, "records": [], "proofs": []}).write_streaming(
        fh, 5, zip(recs, proofs, strict=True)
    )
    assert fh.getvalue() == m.to_bytes()
    assert Manifest.from_bytes(fh.getvalue()).merkle_root == m.merkle_root
