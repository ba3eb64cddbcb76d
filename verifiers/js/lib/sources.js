// Where content comes from: an IPFS /api/v0 node, or a folder laid out as Veilchain's
// embedded block store (objects/<2 chars before the CID's last>/<base32 CIDv1>).
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'

export class NotFound extends Error {}

export function ipfsApiSource (api, timeoutS = 30) {
  let base = api
  const m = /^\/(?:ip4|ip6|dns4|dns6|dns)\/([^/]+)\/tcp\/(\d+)/.exec(api)
  if (m) base = `http://${m[1].includes(':') ? `[${m[1]}]` : m[1]}:${m[2]}`
  base = base.replace(/\/+$/, '')
  return async (cid) => {
    const url = `${base}/api/v0/cat?arg=${encodeURIComponent(cid)}&timeout=${timeoutS}s`
    let res
    try {
      res = await fetch(url, { method: 'POST', signal: AbortSignal.timeout(timeoutS * 1000 + 5000) })
    } catch (err) {
      throw new Error(`IPFS API ${base} unreachable: ${err.cause?.code ?? err.message}`)
    }
    if (!res.ok) throw new NotFound(`${res.status} ${(await res.text()).slice(0, 200).trim()}`)
    return new Uint8Array(await res.arrayBuffer())
  }
}

export function blockFolderSource (root) {
  return async (cid) => {
    try {
      return new Uint8Array(await readFile(join(root, 'objects', cid.slice(-3, -1), cid)))
    } catch (err) {
      if (err.code === 'ENOENT') throw new NotFound(`not in ${root}`)
      throw err
    }
  }
}
