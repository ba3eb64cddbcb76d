"""Sorted-pair keccak256 Merkle trees, the rule VeilRegistry.verifyRecord checks.

Leaves are 32-byte hashes the caller computed (the platform defines the leaf encoding). A
parent is ``keccak256(min(a, b) ++ max(a, b))``: proofs need no left/right flags. On a level
with an odd number of nodes the last node is promoted to the next level unchanged. The root of
one leaf is the leaf itself (empty proof); an empty tree has no root and no proofs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_utils import keccak

from veilchain.errors import InputError

__all__ = ["MerkleTree", "PackedMerkleTree", "build_merkle_tree", "hash_pair", "verify_proof"]


def hash_pair(a: bytes, b: bytes) -> bytes:
    """The parent of two nodes: keccak256 over the pair in ascending byte order."""
    return keccak(a + b) if a <= b else keccak(b + a)


@dataclass(frozen=True)
class MerkleTree:
    """All levels of a tree, leaves first; ``root`` is the single node of the last level."""

    levels: tuple[tuple[bytes, ...], ...] = field(repr=False)

    @property
    def leaves(self) -> tuple[bytes, ...]:
        return self.levels[0]

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def __len__(self) -> int:
        return len(self.levels[0])

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes from leaf ``index`` up to the root (promoted levels add nothing)."""
        if not 0 <= index < len(self):
            raise InputError(f"leaf index {index} is outside the tree of {len(self)} leaves")
        path = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            index //= 2
        return path


def build_merkle_tree(leaves: list[bytes]) -> MerkleTree:
    """Build the tree over already-hashed 32-byte leaves, in the given order."""
    if not leaves:
        raise InputError("cannot build a Merkle tree over zero records")
    level = tuple(bytes(leaf) for leaf in leaves)
    for i, leaf in enumerate(level):
        if len(leaf) != 32:
            raise InputError(f"Merkle leaf {i} is {len(leaf)} bytes; leaves must be 32-byte hashes")
    levels = [level]
    while len(level) > 1:
        nxt = [hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = tuple(nxt)
        levels.append(level)
    return MerkleTree(levels=tuple(levels))


def verify_proof(leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    """True when folding ``proof`` into ``leaf`` with :func:`hash_pair` gives ``root``."""
    node = bytes(leaf)
    for sibling in proof:
        node = hash_pair(node, bytes(sibling))
    return node == bytes(root)


class PackedMerkleTree:
    """The same tree as :func:`build_merkle_tree`, its levels packed in ``bytes`` (32 bytes
    per node, no per-node object): about 64 bytes per leaf in all, for data sets of
    millions of records."""

    def __init__(self, leaves: bytes | bytearray) -> None:
        if not leaves:
            raise InputError("cannot build a Merkle tree over zero records")
        if len(leaves) % 32:
            raise InputError("packed Merkle leaves must be a multiple of 32 bytes")
        level = bytes(leaves)
        self.levels = [level]
        while len(level) > 32:
            n = len(level) // 32
            nxt = bytearray()
            for i in range(0, n - 1, 2):
                nxt += hash_pair(level[32 * i : 32 * i + 32], level[32 * i + 32 : 32 * i + 64])
            if n % 2:
                nxt += level[-32:]
            level = bytes(nxt)
            self.levels.append(level)

    @property
    def root(self) -> bytes:
        return self.levels[-1]

    def __len__(self) -> int:
        return len(self.levels[0]) // 32

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes from leaf ``index`` up to the root, as ``MerkleTree.proof``."""
        if not 0 <= index < len(self):
            raise InputError(f"leaf index {index} is outside the tree of {len(self)} leaves")
        path = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level) // 32:
                path.append(level[32 * sibling : 32 * sibling + 32])
            index //= 2
        return path
