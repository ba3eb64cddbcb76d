// The CID `ipfs add --cid-version=1 --raw-leaves` gives (docs/storage.md): 256 KiB fixed
// chunks, raw leaves, balanced DAG of at most 174 links, sha2-256, base32 text.
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CID } from 'multiformats/cid'

// The importer only needs somewhere to put blocks; we keep none.
const discard = {
  put: async (cid) => cid,
  get: async () => { throw new Error('no blocks kept') },
  has: async () => false
}

export async function computeCid (bytes) {
  const options = {
    cidVersion: 1,
    rawLeaves: true,
    leafType: 'raw',
    reduceSingleLeafToSelf: true,
    chunker: fixedSize({ chunkSize: 262144 }),
    layout: balanced({ maxChildrenPerNode: 174 })
  }
  let root
  for await (const entry of importer([{ content: bytes }], discard, options)) root = entry
  return root.cid.toV1().toString()
}

// Any CID text (v0 base58, v1 in base32 or base58) as base32 CIDv1; null when not a CID.
export function normalizeCid (text) {
  try {
    return CID.parse(text).toV1().toString()
  } catch {
    return null
  }
}
