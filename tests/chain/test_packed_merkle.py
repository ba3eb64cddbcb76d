"""PackedMerkleTree (the streaming registration's tree) equals build_merkle_tree."""

from __future__ import annotations

import os

import pytest

from veilchain.chain.merkle import PackedMerkleTree, build_merkle_tree


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 33, 100])
def test_same_root_and_proofs(n):
    leaves = [os.urandom(32) for _ in range(n)]
    plain, packed = build_merkle_tree(leaves), PackedMerkleTree(b"".join(leaves))
    assert packed.root == plain.root and len(packed) == n
    assert all(packed.proof(i) == plain.proof(i) for i in range(n))
