// The page of the native <-> JS interop test (crates/fast_rtc_swarm/tests/js_native_interop.rs):
// members running the JavaScript reference client (interop.js), driven by the test over a
// control WebSocket to the page's own origin. The test sends commands (join, send, close); the
// page reports every member's events as they happen, tagged with the member's name.
// scripts/setup-browser.sh bundles this file with esbuild.
import { JsMember } from './interop.js'

const members = new Map()
const control = new WebSocket(`ws://${location.host}/control`)

function report (member, event) {
  control.send(JSON.stringify({ member, ...event }))
}

window.addEventListener('error', (e) => report(null, { type: 'page_error', error: String(e.message) }))
window.addEventListener('unhandledrejection', (e) => report(null, { type: 'page_error', error: String(e.reason) }))

// Chromium offers plain 127.0.0.1 candidates (instead of mDNS names) once the page has been
// granted a microphone: the fake one of the test's flags (see tests/browser/mod.rs).
async function allowLoopbackCandidates () {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true })
  for (const track of stream.getTracks()) track.stop()
}

// A member that greets every peer in its `open` handler, the first moment the API allows:
// `hello from NAME` as text, then the same as binary.
function join ({ name, url, token, room }) {
  const member = new JsMember(url, token, room, (event) => report(name, event))
  member.swarm.on('open', (peer) => {
    const hello = `hello from ${name}`
    peer.send(hello)
    peer.send(new TextEncoder().encode(hello).buffer)
  })
  member.swarm.on('error', (error, peer) => {
    report(name, { type: 'error', userId: peer ? peer.userId : null, error: String(error) })
  })
  members.set(name, member)
}

const commands = {
  join,
  send: ({ name, userId, text }) => members.get(name).sendText(userId, text),
  close: ({ name }) => members.get(name).close()
}

control.onmessage = (e) => {
  const command = JSON.parse(e.data)
  try {
    commands[command.cmd](command)
  } catch (error) {
    report(command.name ?? null, { type: 'page_error', error: `${command.cmd}: ${error}` })
  }
}
control.onopen = () => {
  allowLoopbackCandidates().then(
    () => report(null, { type: 'ready' }),
    (error) => report(null, { type: 'page_error', error: `getUserMedia: ${error}` })
  )
}
