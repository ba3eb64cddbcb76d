#!/usr/bin/env node
// veilchain-verify-js: verify a Veilchain data set version without Veilchain and without keys.
//   node verify.js --rpc URL --contract ADDR --dataset ID [--version V] [--institution ADDR]
//                  (--ipfs API | --blocks DIR)
// Prints the verdict as JSON (the shape of `veilchain verify --json`); exit 0 pass, 1 fail,
// 2 bad input, 3 chain unreachable, 7 no such data set or version. Unreadable content is a problem in
// the verdict (exit 1), as in the Python verifier.
import { parseArgs } from 'node:util'
import { isAddress, getAddress } from 'ethers'
import { blockFolderSource, ipfsApiSource } from './lib/sources.js'
import { ChainError, NotFoundError, latestVersion, openChain, verifyVersion } from './lib/verify.js'

const die = (code, message) => { process.stderr.write(`error: ${message}\n`); process.exit(code) }

let args
try {
  args = parseArgs({
    options: {
      rpc: { type: 'string' }, contract: { type: 'string' }, dataset: { type: 'string' },
      version: { type: 'string' }, institution: { type: 'string' }, ipfs: { type: 'string' }, blocks: { type: 'string' },
      timeout: { type: 'string', default: '30' }
    }
  }).values
} catch (err) {
  die(2, err.message)
}
const number = (s) => /^[0-9]+$/.test(s ?? '') && Number.isSafeInteger(Number(s))
if (!args.rpc) die(2, '--rpc URL of a JSON-RPC node is required')
if (!args.contract || !isAddress(args.contract)) die(2, '--contract must be the VeilRegistry address (0x + 40 hex)')
if (!number(args.dataset)) die(2, '--dataset must be a data set id (1, 2, ...)')
if (args.version !== undefined && !number(args.version)) die(2, '--version must be 1, 2, ...')
if (!number(args.timeout) || Number(args.timeout) === 0) die(2, '--timeout must be a number of seconds')
if (args.institution !== undefined && !isAddress(args.institution)) die(2, '--institution must be an address (0x + 40 hex)')
if (!!args.ipfs === !!args.blocks) die(2, 'give exactly one of --ipfs API (multiaddr or http URL) and --blocks DIR')

const source = args.ipfs ? ipfsApiSource(args.ipfs, Number(args.timeout)) : blockFolderSource(args.blocks)
try {
  const chain = await openChain(args.rpc, getAddress(args.contract))
  const datasetId = Number(args.dataset)
  const version = args.version ? Number(args.version) : await latestVersion(chain, datasetId)
  const verdict = await verifyVersion(chain, source, datasetId, version, args.institution ?? null)
  process.stdout.write(JSON.stringify(verdict, null, 2) + '\n')
  process.exit(verdict.ok ? 0 : 1)
} catch (err) {
  if (err instanceof NotFoundError) die(7, err.message)
  if (err instanceof ChainError) die(3, err.message)
  die(10, err.stack ?? err.message)
}
