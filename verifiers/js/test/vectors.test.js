// docs/vectors reproduced byte for byte by this verifier's own functions (run by pytest too).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import canonicalize from 'canonicalize'
import { AbiCoder, keccak256 } from 'ethers'
import { computeCid } from '../lib/cid.js'
import { parseManifest } from '../lib/verify.js'
import { hashPair, leafOf, merkleRoot, reportSha256, verifyProof } from '../lib/leaf.js'

const VECTORS = new URL('../../../docs/vectors/', import.meta.url)
const read = (name) => readFileSync(new URL(name, VECTORS))
const json = (name) => JSON.parse(read(name).toString('utf8'))
const sha256 = (b) => createHash('sha256').update(b).digest('hex')

function payload (n) {
  const out = Buffer.alloc(n)
  for (let i = 0, off = 0; off < n; i++, off += 32) {
    const counter = Buffer.alloc(4)
    counter.writeUInt32BE(i)
    createHash('sha256').update(counter).digest().copy(out, off, 0, Math.min(32, n - off))
  }
  return out
}

test('RFC 8785 vectors', () => {
  for (const v of json('jcs.json').vectors) {
    const out = Buffer.from(canonicalize(JSON.parse(v.json)), 'utf8')
    assert.equal(out.toString('utf8'), v.jcs, v.name)
    assert.equal(sha256(out), v.sha256, v.name)
  }
})

test('CID vectors', async () => {
  for (const v of json('cid.json').vectors) assert.equal(await computeCid(payload(v.bytes)), v.cid, `${v.bytes} bytes`)
})

test('worked example: manifest bytes, CID, reports, leaves, tree', async () => {
  const bytes = read('example/manifest.json')
  const expected = json('example/expected.json')
  const chain = json('example/chain.json')
  const m = JSON.parse(bytes.toString('utf8'))
  assert.ok(Buffer.from(canonicalize(m), 'utf8').equals(bytes), 'manifest is its own JCS form')
  assert.equal(await computeCid(bytes), expected.manifest_cid)
  assert.equal(expected.manifest_cid, chain.manifestCid)
  assert.equal(sha256(bytes), expected.manifest_sha256)
  assert.equal(canonicalize(m.anonymization.params), expected.chain_params)
  assert.equal(expected.chain_params, chain.params)
  const leaves = []
  for (const [i, r] of m.records.entries()) {
    const want = expected.records[i]
    assert.equal(canonicalize(r.report), want.report_jcs)
    assert.equal(reportSha256(r.report), want.report_sha256)
    const encoded = AbiCoder.defaultAbiCoder().encode(
      ['uint256', 'string', 'string', 'bytes32', 'bytes32', 'bytes32'],
      [r.index, r.image_id, r.cid, '0x' + r.ciphertext_sha256, '0x' + r.anonymized_sha256, '0x' + want.report_sha256])
    assert.equal(encoded, want.abi_encoded)
    assert.equal(keccak256(encoded), want.inner)
    assert.equal(leafOf(r), want.leaf)
    assert.equal(r.leaf, want.leaf)
    leaves.push(leafOf(r))
    assert.ok(verifyProof(want.leaf, r.proof, chain.merkleRoot), `proof of record ${i}`)
  }
  assert.deepEqual(expected.tree_levels[0], leaves)
  for (let k = 1; k < expected.tree_levels.length; k++) {
    const below = expected.tree_levels[k - 1]
    const level = []
    for (let i = 0; i + 1 < below.length; i += 2) level.push(hashPair(below[i], below[i + 1]))
    if (below.length % 2) level.push(below[below.length - 1])
    assert.deepEqual(level, expected.tree_levels[k])
  }
  assert.equal(merkleRoot(leaves), expected.root)
  assert.equal(expected.root, chain.merkleRoot)
})

test('malformed manifests are refused with the same problem as the Python verifier', () => {
  for (const v of json('malformed.json').vectors) {
    const got = parseManifest(Buffer.from(v.manifest, 'utf8'))
    assert.ok(got.problem, v.name)
    // The text after ';' names which formats each verifier reads; the rest is identical.
    assert.equal(got.problem.split(';')[0], v.problem.split(';')[0], v.name)
  }
  const example = parseManifest(read('example/manifest.json'))
  assert.ok(example.manifest && !example.problem)
})

test('a format-1 manifest is refused in one line, not misread', () => {
  const v1 = readFileSync(new URL('../../../tests/data/manifest_v1/manifest.json', import.meta.url))
  const got = parseManifest(v1)
  assert.match(got.problem, /^unknown manifest format 'veilchain-manifest\/1'; this verifier reads format 2 only/)
})

test('data set statements: all three, each a string or null, pass C4; the example predates them', () => {
  const m = JSON.parse(read('example/manifest.json').toString('utf8'))
  assert.ok(!('description' in m.dataset) && parseManifest(read('example/manifest.json')).manifest)
  m.dataset = { ...m.dataset, description: 'Staff portraits\nsecond line', licence: 'CC-BY-4.0', consent: null }
  const got = parseManifest(Buffer.from(canonicalize(m), 'utf8'))
  assert.ok(got.manifest, got.problem)
  assert.equal(got.manifest.dataset.licence, 'CC-BY-4.0')
})
