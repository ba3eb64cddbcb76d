// Leaves and the Merkle tree (docs/manifest.md sections 4 and 5).
import { createHash } from 'node:crypto'
import canonicalize from 'canonicalize'
import { AbiCoder, getBytes, keccak256 } from 'ethers'

export const sha256Hex = (bytes) => createHash('sha256').update(bytes).digest('hex')

// Format 2: sha256 of the RFC 8785 form of the report object, as UTF-8.
export function reportSha256 (report) {
  return sha256Hex(Buffer.from(canonicalize(report), 'utf8'))
}

export function leafOf (rec) {
  const inner = keccak256(AbiCoder.defaultAbiCoder().encode(
    ['uint256', 'string', 'string', 'bytes32', 'bytes32', 'bytes32'],
    [BigInt(rec.index), rec.image_id, rec.cid, '0x' + rec.ciphertext_sha256,
      '0x' + rec.anonymized_sha256, '0x' + reportSha256(rec.report)]
  ))
  return keccak256(inner)
}

// parent = keccak256(min(a, b) || max(a, b)); 0x-hex strings in, 0x-hex out.
export function hashPair (a, b) {
  const [lo, hi] = BigInt(a) <= BigInt(b) ? [a, b] : [b, a]
  return keccak256(new Uint8Array([...getBytes(lo), ...getBytes(hi)]))
}

export function merkleRoot (leaves) {
  if (leaves.length === 0) return null
  let level = leaves
  while (level.length > 1) {
    const next = []
    for (let i = 0; i + 1 < level.length; i += 2) next.push(hashPair(level[i], level[i + 1]))
    if (level.length % 2 === 1) next.push(level[level.length - 1]) // promoted unchanged
    level = next
  }
  return level[0]
}

export function verifyProof (leaf, proof, root) {
  let node = leaf
  for (const sibling of proof) node = hashPair(node, sibling)
  return node === root
}
