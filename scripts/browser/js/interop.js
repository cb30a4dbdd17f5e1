// A member running the JavaScript reference client, @mattkrick/fast-rtc-swarm@0.4.1, with the
// WebSocket glue its README describes. The wasm interop test (crates/fast_rtc_swarm/tests/web_interop.rs)
// drives it through these exports, and harness.js (the native <-> JS test's page) imports it;
// scripts/setup-browser.sh bundles both with esbuild.
import * as swarmModule from '@mattkrick/fast-rtc-swarm'

// The package is CommonJS with its class on `exports.default` (and no __esModule marker).
const FastRTCSwarm = typeof swarmModule.default === 'function'
  ? swarmModule.default
  : swarmModule.default.default

export class JsMember {
  /**
   * `onEvent`, if given, is called with each event (an object) instead of queueing it.
   * `streams`, if given, is the client's `streams` option (`{ streamName: { trackName: { track } } }`).
   */
  constructor (url, token, room, onEvent = null, streams = undefined) {
    this.events = []
    this.onEvent = onEvent
    this.pending = []
    // The package's default STUN URL ('...?transport=udp') is refused by current Chromium, and
    // loopback needs none.
    this.swarm = new FastRTCSwarm({ roomId: room, rtcConfig: { iceServers: [] }, streams })
    this.ws = new WebSocket(`${url}?token=${encodeURIComponent(token)}`)
    this.swarm.on('signal', (signal) => {
      if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(signal))
      else this.pending.push(signal)
    })
    this.ws.onopen = () => {
      for (const signal of this.pending) this.ws.send(JSON.stringify(signal))
      this.pending = []
    }
    this.ws.onmessage = (e) => this.swarm.dispatch(JSON.parse(e.data))
    // `label`: the channel the client took for the link (it takes the first one announced).
    this.swarm.on('open', (peer) => this.push({ type: 'open', userId: peer.userId, id: peer.id, label: peer.dataChannel?.label }))
    this.swarm.on('close', (peer) => this.push({ type: 'close', userId: peer.userId }))
    this.swarm.on('data', async (data, peer) => {
      if (typeof data === 'string') {
        this.push({ type: 'data', userId: peer.userId, id: peer.id, text: data })
      } else {
        const buf = data instanceof Blob ? await data.arrayBuffer() : data
        this.push({ type: 'data', userId: peer.userId, id: peer.id, bytes: Array.from(new Uint8Array(buf)) })
      }
    })
  }

  push (event) {
    if (this.onEvent) this.onEvent(event)
    else this.events.push(JSON.stringify(event))
  }

  /** The oldest event not read yet, as JSON, or null. */
  nextEvent () { return this.events.shift() ?? null }

  sendText (userId, text) { this.peer(userId).send(text) }

  sendBytes (userId, bytes) { this.peer(userId).send(new Uint8Array(bytes).buffer) }

  peer (userId) {
    for (const peer of this.swarm.peers.values()) {
      if (peer.userId === userId) return peer
    }
    throw new Error(`no peer ${userId}`)
  }

  close () {
    this.swarm.close()
    setTimeout(() => this.ws.close(), 200)
  }
}
