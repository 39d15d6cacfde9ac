// Starts the reference AT Protocol servers (PLC + PDS, and the AppView unless --no-appview) on 127.0.0.1.
//
// Prints one JSON line {"ready": true, "pds", "plc", "appview", "control"} when every service answers,
// then serves a tiny control API on loopback for the Python sandbox:
//   GET  /info          the same JSON
//   POST /process-all   index every pending write (PDS background queue + AppView subscription)
//   POST /stop          close the network and exit
// Stdin closing (the Python parent died) also stops everything, so no orphan servers stay behind.
//
// Options (argv): --no-appview, --full (with Ozone), --rate-limits, --blob-limit BYTES, --public-url URL, --wait-go. Needs DB_POSTGRES_URL and REDIS_HOST with the AppView.
import http from 'node:http'
import net from 'node:net'
import { createRequire } from 'node:module'
import readline from 'node:readline'

// The dev-env servers listen on every interface; this sandbox must only ever be reachable from this machine.
const LOOPBACK = '127.0.0.1'
const wildcard = (host) => host === undefined || host === null || host === '' || host === '0.0.0.0' || host === '::'
const originalListen = net.Server.prototype.listen
net.Server.prototype.listen = function listen(...args) {
  const [first, second] = args
  if (first && typeof first === 'object' && !Array.isArray(first) && 'port' in first && wildcard(first.host)) {
    args[0] = { ...first, host: LOOPBACK }
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    if (typeof second === 'string') {
      if (wildcard(second)) args[1] = LOOPBACK
    } else {
      args.splice(1, 0, LOOPBACK)
    }
  }
  return originalListen.apply(this, args)
}

process.env.LOG_ENABLED = process.env.LOG_ENABLED ?? 'false'

const argv = process.argv.slice(2)
const flag = (name) => argv.includes(name)
const option = (name, fallback) => {
  const at = argv.indexOf(name)
  return at >= 0 ? argv[at + 1] : fallback
}
const withAppView = !flag('--no-appview')
const blobLimit = Number(option('--blob-limit', String(100 * 1024 * 1024)))

const require = createRequire(import.meta.url)
const devEnv = require('@atproto/dev-env')

const freePort = () =>
  new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once('error', reject)
    probe.listen(0, LOOPBACK, () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })

// With --wait-go the parent starts PostgreSQL and redis while this process loads (seconds of module
// loading on a small machine), and says "go" on stdin once they answer.
const stdinLines = readline.createInterface({ input: process.stdin })
if (flag('--wait-go')) {
  const first = await new Promise((resolve) => {
    stdinLines.once('line', resolve)
    stdinLines.once('close', () => resolve(null))
  })
  if (first === null) process.exit(0)
}

// PLC + AppView + PDS, wired as dev-env's TestNetwork wires them, without its moderation service (Ozone)
// and the extra PDS that hosts it: the bot reads self-labels only, and they cost a third of start-up.
// --full starts dev-env's complete TestNetwork instead.
async function leanNetwork(pdsOptions) {
  const plc = await devEnv.TestPlc.create({})
  const bskyPort = await freePort()
  const pdsPort = await freePort()
  const bsky = await devEnv.TestBsky.create({
    port: bskyPort,
    plcUrl: plc.url,
    pdsPort,
    repoProvider: `ws://localhost:${pdsPort}`,
    dbPostgresSchema: 'appview_bot',
    dbPostgresUrl: process.env.DB_POSTGRES_URL,
    redisHost: process.env.REDIS_HOST,
  })
  const pds = await devEnv.TestPds.create({
    port: pdsPort,
    didPlcUrl: plc.url,
    bskyAppViewUrl: bsky.url,
    bskyAppViewDid: bsky.ctx.cfg.serverDid,
    ...pdsOptions,
  })
  devEnv.mockNetworkUtilities(pds, bsky)
  return {
    plc,
    pds,
    bsky,
    ozone: null,
    // Index everything the PDS has sequenced so far (as TestNetwork.processAll does).
    async processAll(timeout = 5000) {
      await pds.processAll()
      const target = await pds.ctx.sequencer.curr()
      const deadline = Date.now() + timeout
      while (target) {
        await bsky.sub.processAll()
        const cursor = await bsky.sub.runner.getCursor()
        if (cursor && cursor >= target) return
        if (Date.now() > deadline) throw new Error(`AppView did not index up to ${target} in ${timeout}ms`)
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    },
    async close() {
      await bsky.close()
      await pds.close()
      await plc.close()
    },
  }
}

const started = Date.now()
const pdsOptions = { blobUploadLimit: blobLimit, rateLimitsEnabled: flag('--rate-limits') }
let network
if (!withAppView) network = await devEnv.TestNetworkNoAppView.create({ pds: pdsOptions })
else if (flag('--full')) network = await devEnv.TestNetwork.create({ dbPostgresSchema: 'bot', pds: pdsOptions })
else network = await leanNetwork(pdsOptions)

// Accounts created from now on get this URL as their PDS endpoint in their DID document, so clients that
// follow the document (the atproto SDKs do) keep talking through the fault-injecting proxy in front of the PDS.
const publicUrl = option('--public-url', null)
if (publicUrl) network.pds.ctx.cfg.service.publicUrl = publicUrl

const loopbackUrl = (url) => url && url.replace('//localhost:', `//${LOOPBACK}:`)
const info = {
  ready: true,
  pds: loopbackUrl(network.pds.url),
  plc: loopbackUrl(network.plc.url),
  appview: withAppView ? loopbackUrl(network.bsky.url) : null,
  ozone: network.ozone ? loopbackUrl(network.ozone.url) : null,
  startup_ms: 0,
}

let stopping = null
const stop = () => {
  stopping ??= network
    .close()
    .catch(() => {})
    .finally(() => process.exit(0))
  return stopping
}

const reply = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

const control = http.createServer(async (req, res) => {
  try {
    if (req.method === 'GET' && req.url === '/info') return reply(res, 200, info)
    if (req.method === 'POST' && req.url === '/process-all') {
      await network.processAll()
      return reply(res, 200, { ok: true })
    }
    if (req.method === 'POST' && req.url === '/stop') {
      reply(res, 200, { ok: true })
      return stop()
    }
    return reply(res, 404, { error: 'NotFound', message: `${req.method} ${req.url}` })
  } catch (err) {
    return reply(res, 500, { error: 'ControlFailed', message: String(err?.message ?? err) })
  }
})
await new Promise((resolve) => control.listen(0, LOOPBACK, resolve))
info.control = `http://${LOOPBACK}:${control.address().port}`
info.startup_ms = Date.now() - started

stdinLines.on('close', stop)
process.on('SIGTERM', stop)
process.on('SIGINT', stop)

process.stdout.write(JSON.stringify(info) + '\n')
