// The ordered check list of docs/manifest.md section 2, for one data set version.
import canonicalize from 'canonicalize'
import { Contract, Interface, JsonRpcProvider, zeroPadValue, toBeHex } from 'ethers'
import { computeCid, normalizeCid } from './cid.js'
import { NotFound } from './sources.js'
import { leafOf, merkleRoot, sha256Hex, verifyProof } from './leaf.js'

// From docs/contract.md ("Functions", "Views", the VersionAdded signature).
export const ABI = [
  'function getDataset(uint256 id) view returns (address owner, uint256 versionCount)',
  'function getVersion(uint256 id, uint256 version) view returns (bytes32 merkleRoot, uint64 recordCount, address registrant, uint64 blockNumber)',
  'event VersionAdded(uint256 indexed datasetId, uint256 indexed version, address indexed registrant, bytes32 merkleRoot, uint64 recordCount, string manifestCid, bytes32 modelHash, string method, string params, uint32 epsilonMilli)'
]
const FORMAT = 'veilchain-manifest/2'
const HEX32 = /^0x[0-9a-f]{64}$/
const SHA = /^[0-9a-f]{64}$/

export class InputError extends Error {}
export class ChainError extends Error {}
/** The chain answered: there is no such data set or version (exit 7, as `veilchain verify`). */
export class NotFoundError extends ChainError {}
const missing = (err, what) => err.code === 'CALL_EXCEPTION'
  ? new NotFoundError(`${what} is not on chain (${err.shortMessage ?? err.message})`)
  : new ChainError(`reading ${what}: ${err.shortMessage ?? err.message}`)

export async function openChain (rpcUrl, address) {
  const provider = new JsonRpcProvider(rpcUrl, undefined, { staticNetwork: true, batchMaxCount: 1 })
  let chainId
  try {
    chainId = (await provider.getNetwork()).chainId
  } catch (err) {
    throw new ChainError(`chain ${rpcUrl} unreachable: ${err.shortMessage ?? err.message}`)
  }
  if ((await provider.getCode(address)) === '0x') {
    throw new ChainError(`no contract at ${address} on chain ${chainId}`)
  }
  return { provider, chainId, address, contract: new Contract(address, ABI, provider), iface: new Interface(ABI) }
}

// Check C1: getVersion, then the VersionAdded event of that block.
export async function readVersion (chain, datasetId, version) {
  const { contract, iface, provider, address } = chain
  let root, count, registrant, block
  try {
    [root, count, registrant, block] = await contract.getVersion(datasetId, version)
  } catch (err) {
    throw missing(err, `data set ${datasetId} v${version}`)
  }
  const topics = [iface.getEvent('VersionAdded').topicHash,
    zeroPadValue(toBeHex(datasetId), 32), zeroPadValue(toBeHex(version), 32)]
  const logs = await provider.getLogs({ address, topics, fromBlock: Number(block), toBlock: Number(block) })
  if (logs.length === 0) throw new ChainError(`VersionAdded of data set ${datasetId} v${version} is missing from block ${block}`)
  const ev = iface.parseLog(logs[logs.length - 1]).args
  if (ev.merkleRoot !== root) throw new ChainError(`event and storage disagree on data set ${datasetId} v${version}`)
  return {
    merkleRoot: root, recordCount: Number(count), registrant, blockNumber: Number(block),
    manifestCid: ev.manifestCid, modelHash: ev.modelHash, method: ev.method,
    params: ev.params, epsilonMilli: Number(ev.epsilonMilli)
  }
}

export async function latestVersion (chain, datasetId) {
  try {
    return Number((await chain.contract.getDataset(datasetId))[1])
  } catch (err) {
    throw missing(err, `data set ${datasetId}`)
  }
}

// Fetch content and re-hash it: bytes under another CID are never accepted.
async function fetchChecked (source, cid) {
  const name = normalizeCid(cid)
  if (name === null) return { problem: `${cid} is not a CID` }
  let bytes
  try {
    bytes = await source(name)
  } catch (err) {
    if (err instanceof NotFound) return { problem: `${cid} is not available`, missing: true }
    return { problem: `${cid} unreadable: ${err.message}` }
  }
  if ((await computeCid(bytes)) !== name) return { problem: 'bytes do not hash to the recorded CID (tampered)', tampered: true }
  return { bytes }
}

function unsafeNumber (value, path = '$') {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? null : path
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) { const p = unsafeNumber(value[i], `${path}[${i}]`); if (p) return p }
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) { const p = unsafeNumber(v, `${path}.${k}`); if (p) return p }
  }
  return null
}

// Field types of docs/manifest.md section 3 (same wording as the Python verifier).
const STR = 'a string'
const INT = 'an integer'
const OBJ = 'an object'
const NULLSTR = 'a string or null'
const SHAPE = {
  dataset: { uid: STR, name: STR, institution: STR, chain_id: 'decimal digits', contract: STR, previous_manifest_cid: NULLSTR, created_at: STR },
  anonymization: { method: STR, model_hash: STR, params: OBJ, epsilon_milli: INT },
  merkle: { root: STR, count: INT }
}
const RECORD = {
  index: INT, image_id: STR, cid: STR, ciphertext_sha256: '64 hex', anonymized_sha256: '64 hex',
  size: INT, width: INT, height: INT, report: OBJ, proof: 'a list of 0x + 64 hex'
}
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)
function fits (v, kind) {
  switch (kind) {
    case STR: return typeof v === 'string'
    case NULLSTR: return v === null || typeof v === 'string'
    case INT: return Number.isSafeInteger(v)
    case OBJ: return isObject(v)
    case 'decimal digits': return typeof v === 'string' && /^[0-9]+$/.test(v)
    case '64 hex': return typeof v === 'string' && SHA.test(v)
    default: return Array.isArray(v) && v.every(p => typeof p === 'string' && HEX32.test(p))
  }
}
// The data set's description, licence and consent statement: all three, each a string or
// null, or none of them (manifests written before they were published).
const STATEMENTS = ['description', 'licence', 'consent']
function statementsProblem (ds) {
  if (!STATEMENTS.some(name => Object.hasOwn(ds, name))) return null
  for (const name of STATEMENTS) if (!fits(ds[name], NULLSTR)) return `dataset.${name} must be ${NULLSTR}`
  return null
}
// The optional section naming the images' Content Credentials signer (docs/provenance.md).
const CREDENTIALS = { institution: STR, ca_certificate: STR, ca_sha256: '64 hex', signer_serial: STR, signer_sha256: '64 hex' }
function shapeProblem (m) {
  if ('credentials' in m) {
    if (!isObject(m.credentials)) return 'credentials must be an object'
    for (const [name, kind] of Object.entries(CREDENTIALS)) if (!fits(m.credentials[name], kind)) return `credentials.${name} must be ${kind}`
  }
  for (const [section, fields] of Object.entries(SHAPE)) {
    if (!isObject(m[section])) return `${section} must be an object`
    for (const [name, kind] of Object.entries(fields)) if (!fits(m[section][name], kind)) return `${section}.${name} must be ${kind}`
  }
  const statements = statementsProblem(m.dataset)
  if (statements) return statements
  if (!Array.isArray(m.records)) return 'records must be a list'
  for (const [i, r] of m.records.entries()) {
    if (!isObject(r)) return `records[${i}] must be an object`
    for (const [name, kind] of Object.entries(RECORD)) if (!fits(r[name], kind)) return `records[${i}].${name} must be ${kind}`
  }
  return null
}

function wellFormed (v) {
  if (typeof v === 'string') return v.isWellFormed()
  if (Array.isArray(v)) return v.every(wellFormed)
  if (v !== null && typeof v === 'object') {
    return Object.entries(v).every(([k, x]) => k.isWellFormed() && wellFormed(x))
  }
  return true
}

// Check C4: the manifest bytes themselves.
export function parseManifest (bytes) {
  let m
  try {
    m = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    return { problem: `manifest is not JSON: ${err.message}` }
  }
  if (m?.format !== FORMAT) {
    const shown = typeof m?.format === 'string' ? `'${m.format}'` : String(m?.format)
    return { problem: `unknown manifest format ${shown}; this verifier reads format 2 only (format 1 hashes reports with Python's json.dumps)` }
  }
  let canonical = null
  try {
    // RFC 8785 needs well-formed Unicode (I-JSON): a lone surrogate has no canonical form
    if (wellFormed(m)) canonical = canonicalize(m)
  } catch { /* Infinity and the like: no canonical form */ }
  if (canonical === null || !Buffer.from(canonical, 'utf8').equals(Buffer.from(bytes))) {
    return { problem: 'manifest bytes are not in RFC 8785 canonical form' }
  }
  const where = unsafeNumber(m)
  if (where) return { problem: `manifest holds a number that is not a safe integer at ${where}` }
  const problem = shapeProblem(m)
  if (problem) return { problem: `manifest is not valid ${FORMAT} JSON: ${problem}` }
  return { manifest: m }
}

const sameAddress = (a, b) => typeof a === 'string' && a.toLowerCase() === b.toLowerCase()

// Checks C5-C10: every manifest field the chain also records.
async function manifestProblems (chain, datasetId, version, ver, m) {
  const p = []
  const { merkle, anonymization: an, dataset: ds } = m
  if (merkle.root !== ver.merkleRoot) p.push(`manifest root ${merkle.root} differs from the chain's ${ver.merkleRoot}`)
  if (merkle.count !== m.records.length) p.push(`merkle.count ${merkle.count} but the manifest lists ${m.records.length}`)
  if (m.records.length !== ver.recordCount) p.push(`manifest lists ${m.records.length} records, the chain ${ver.recordCount}`)
  if (an.model_hash !== ver.modelHash) p.push("manifest model hash differs from the chain's")
  if (an.method !== ver.method) p.push(`manifest method ${an.method} differs from the chain's ${ver.method}`)
  if (canonicalize(an.params) !== ver.params) p.push("manifest anonymization.params differ from the chain's params")
  if (an.epsilon_milli !== ver.epsilonMilli) p.push(`manifest epsilon_milli ${an.epsilon_milli} differs from the chain's ${ver.epsilonMilli}`)
  if (BigInt(ds.chain_id) !== chain.chainId) {
    p.push(`manifest chain_id ${ds.chain_id} is not this chain's ${chain.chainId}`)
  }
  if (!sameAddress(ds.contract, chain.address)) p.push(`manifest contract ${ds.contract} is not ${chain.address}`)
  if (!sameAddress(ds.institution, ver.registrant)) p.push(`manifest institution ${ds.institution} is not the registrant ${ver.registrant}`)
  const prev = ds.previous_manifest_cid
  if (prev !== null && prev !== undefined) {
    const earlier = []
    for (let v = 1; v < version; v++) earlier.push((await readVersion(chain, datasetId, v)).manifestCid)
    if (!earlier.includes(prev)) p.push(`previous_manifest_cid ${prev} is no earlier version's manifest on chain`)
  }
  return p
}

async function recordProblems (source, n, r) {
  const bad = []
  if (r.index !== n) bad.push(`record ${n} carries index ${r.index}`)
  const padded = String(r.index).padStart(6, '0')
  if (r.image_id !== padded) bad.push(`image_id ${r.image_id} is not the padded index ${padded}`)
  const got = await fetchChecked(source, r.cid)
  if (got.tampered) bad.push('ciphertext bytes do not hash to the recorded CID (tampered)')
  else if (got.missing) bad.push(`ciphertext ${r.cid} is not available`)
  else if (got.problem) bad.push(`ciphertext ${got.problem}`)
  if (got.bytes) {
    if (sha256Hex(got.bytes) !== r.ciphertext_sha256) bad.push('ciphertext sha256 differs from the manifest')
    if (got.bytes.length !== r.size) bad.push(`ciphertext is ${got.bytes.length} bytes, the manifest says size ${r.size}`)
  }
  return bad
}

// The verdict, in the shape of `veilchain verify --json`.
// institution: the address the auditor trusts (check C2); null skips it.
export async function verifyVersion (chain, source, datasetId, version, institution = null) {
  const t0 = performance.now()
  const ver = await readVersion(chain, datasetId, version)
  const trusted = institution !== null && !sameAddress(institution, ver.registrant)
    ? [`registrant ${ver.registrant} is not the trusted institution ${institution}`]
    : []
  const verdict = (computed, problems, images) => {
    const failing = images.filter(i => !i.ok)
    return {
      dataset_id: datasetId, version, manifest_cid: ver.manifestCid, chain_root: ver.merkleRoot,
      computed_root: computed, record_count: ver.recordCount,
      ok: problems.length === 0 && failing.length === 0, problems,
      seconds: (performance.now() - t0) / 1000, failing
    }
  }
  const got = await fetchChecked(source, ver.manifestCid)
  if (!got.bytes) return verdict(null, [...trusted, `manifest ${ver.manifestCid}: ${got.problem}`], [])
  const parsed = parseManifest(got.bytes)
  if (!parsed.manifest) return verdict(null, [...trusted, `manifest ${ver.manifestCid}: ${parsed.problem}`], [])
  const m = parsed.manifest
  const problems = [...trusted, ...await manifestProblems(chain, datasetId, version, ver, m)]
  const images = []
  const leaves = []
  for (const [n, r] of m.records.entries()) {
    const bad = await recordProblems(source, n, r)
    const leaf = leafOf(r) // step 4: recomputed; r.leaf and r.report_sha256 are not trusted
    leaves.push(leaf)
    if (!verifyProof(leaf, r.proof, ver.merkleRoot)) bad.push('record does not prove into the on-chain Merkle root')
    images.push({ index: n, image_id: r.image_id, cid: r.cid, ok: bad.length === 0, problems: bad })
  }
  const computed = merkleRoot(leaves)
  if (computed !== ver.merkleRoot) problems.push(`records hash to root ${computed}, the chain holds ${ver.merkleRoot}`)
  return verdict(computed, problems, images)
}
