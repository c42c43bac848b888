// A JS eth/68 client on @ethereumjs/devp2p, for the side-by-side benchmark (bench/shaped_fetch.py).
//
// Connects to the given ethp2p servers, exchanges Status, and fetches a block range:
// headers 1,024 per request (each header keccak-hashed and checked to link to its
// parent), then, if --payloads N, bodies and receipts of blocks 1..N (counted, not
// verified: @ethereumjs/devp2p has no root checks of its own). Prints one JSON line.
//
// Usage: node bench/js/fetch.mjs NODE_MODULES GENESIS_JSON GENESIS_HASH HEADERS PAYLOADS ENODE...
import { createRequire } from 'node:module'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const [nm, genesisPath, genesisHashHex, headersArg, payloadsArg, ...enodes] = process.argv.slice(2)
const imp = (p) => import(pathToFileURL(join(nm, p)).href)
const { RLPx, ETH, EthMessageCodes } = await imp('@ethereumjs/devp2p/dist/esm/index.js')
const { RLP } = await imp('@ethereumjs/rlp/dist/esm/index.js')
const { createCommonFromGethGenesis } = await imp('@ethereumjs/common/dist/esm/index.js')
const { hexToBytes, bytesToHex, intToBytes, bytesToInt, equalsBytes } = await imp('@ethereumjs/util/dist/esm/index.js')
const require = createRequire(join(nm, 'x.js'))
const { keccak256 } = require('ethereum-cryptography/keccak.js')

const HEADERS = Number(headersArg)
const PAYLOADS = Number(payloadsArg)
const genesisHash = hexToBytes('0x' + genesisHashHex)
const common = createCommonFromGethGenesis(JSON.parse(readFileSync(genesisPath, 'utf8')), { chain: 'shaped', genesisHash })
const C = EthMessageCodes
const rlpx = new RLPx(randomBytes(32), { dpt: null, maxPeers: enodes.length, capabilities: [ETH.eth68], common, listenPort: null })

let nextId = 1
const pending = new Map() // request id -> resolve
const peers = []
const ready = new Promise((resolve) => {
  rlpx.events.on('peer:added', (peer) => {
    const eth = peer.getProtocols()[0]
    eth.events.on('message', (code, payload) => {
      if (process.env.JSDEBUG) console.error('msg', code, payload.length)
      if (code === C.BLOCK_HEADERS || code === C.BLOCK_BODIES || code === C.RECEIPTS) {
        const id = bytesToInt(payload[0])
        const done = pending.get(id)
        if (done) { pending.delete(id); done(payload[1]) }
      }
    })
    eth.events.once('status', () => {
      peers.push(eth)
      if (peers.length === enodes.length) resolve()
    })
    eth.sendStatus({ td: new Uint8Array(), bestHash: genesisHash, genesisHash })
  })
})
rlpx.events.on('peer:error', (peer, err) => { console.error('peer error', err.message) })
for (const e of enodes) {
  const m = /^enode:\/\/([0-9a-f]{128})@([\d.]+):(\d+)/.exec(e)
  rlpx.connect({ id: hexToBytes('0x' + m[1]), address: m[2], tcpPort: Number(m[3]) })
}
await ready

function request(eth, code, body) {
  const id = nextId++
  return new Promise((resolve) => { pending.set(id, resolve); eth.sendMessage(code, [intToBytes(id), body]) })
}

// Workers: each peer keeps two requests in flight, taking the next chunk from a shared cursor.
async function runQueue(chunks, work) {
  let i = 0
  const worker = async (eth) => { while (i < chunks.length) { const c = chunks[i++]; await work(eth, c) } }
  await Promise.all(peers.flatMap((eth) => [worker(eth), worker(eth)]))
}

const t0 = performance.now()
const chunks = []
for (let s = 1; s <= HEADERS; s += 1024) chunks.push([s, Math.min(1024, HEADERS - s + 1)])
const got = new Map()
const hashes = new Array(HEADERS + 1)
await runQueue(chunks, async (eth, [start, n]) => {
  let at = start
  while (at < start + n) {
    const hs = await request(eth, C.GET_BLOCK_HEADERS, [intToBytes(at), intToBytes(start + n - at), new Uint8Array(), new Uint8Array()])
    if (hs.length === 0) throw new Error(`no headers at ${at}`)
    for (const h of hs) got.set(at++, h)
  }
})
let prev = genesisHash
for (let n = 1; n <= HEADERS; n++) {
  const h = got.get(n)
  if (!equalsBytes(h[0], prev)) throw new Error(`header ${n} does not link`)
  if (bytesToInt(h[8]) !== n) throw new Error(`header ${n} has number ${bytesToInt(h[8])}`)
  prev = keccak256(RLP.encode(h))
  hashes[n] = prev
}
const tHeaders = (performance.now() - t0) / 1000

let tPayloads = 0
let bytesIn = 0
if (PAYLOADS > 0) {
  const t1 = performance.now()
  const bchunks = []
  for (let s = 1; s <= PAYLOADS; s += 64) bchunks.push([s, Math.min(64, PAYLOADS - s + 1)])
  let bodies = 0, receipts = 0
  await runQueue(bchunks, async (eth, [start, n]) => {
    for (const [code, count] of [[C.GET_BLOCK_BODIES, 'b'], [C.GET_RECEIPTS, 'r']]) {
      let at = start
      while (at < start + n) {
        const want = hashes.slice(at, start + n)
        const items = await request(eth, code, want)
        if (items.length === 0) throw new Error(`nothing for ${at}`)
        at += items.length
        if (count === 'b') bodies += items.length; else receipts += items.length
      }
    }
  })
  if (bodies !== PAYLOADS || receipts !== PAYLOADS) throw new Error(`bodies ${bodies} receipts ${receipts}`)
  tPayloads = (performance.now() - t1) / 1000
}
console.log(JSON.stringify({ headers: HEADERS, headers_s: tHeaders, headers_per_s: HEADERS / tHeaders,
  payloads: PAYLOADS, payloads_s: tPayloads, payload_blocks_per_s: PAYLOADS ? PAYLOADS / tPayloads : 0,
  cpu_s: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6 }))
process.exit(0)
