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

// Voice (tests/js_native_voice.rs): one AudioContext for the page's tones and analysers.
let audio = null
function audioContext () {
  audio = audio ?? new AudioContext({ sampleRate: 48000 })
  return audio
}

// A sine of `hz` as a MediaStreamTrack: the `voice` track of a member joined with `tone`.
function toneTrack (hz) {
  const ac = audioContext()
  const osc = ac.createOscillator()
  osc.frequency.value = hz
  const gain = ac.createGain()
  gain.gain.value = 0.5
  const dest = ac.createMediaStreamDestination()
  osc.connect(gain).connect(dest)
  osc.start()
  return dest.stream.getAudioTracks()[0]
}

// Reports what a remote stream sounds like, twice a second: the frequency of the loudest
// FFT bin and the level (RMS of the waveform, 0 to 1), as `audio` events, until it ends.
function listen (name, stream, peer) {
  const ac = audioContext()
  // Chromium feeds a remote WebRTC stream to WebAudio only while a media element plays it.
  const element = new Audio()
  element.muted = true
  element.srcObject = stream
  element.play().catch((e) => report(name, { type: 'page_error', error: `play: ${e}` }))
  const analyser = ac.createAnalyser()
  analyser.fftSize = 8192
  ac.createMediaStreamSource(stream).connect(analyser)
  const spectrum = new Float32Array(analyser.frequencyBinCount)
  const wave = new Float32Array(analyser.fftSize)
  const timer = setInterval(() => {
    if (stream.getAudioTracks().every((t) => t.readyState === 'ended')) {
      clearInterval(timer)
      return
    }
    analyser.getFloatFrequencyData(spectrum)
    analyser.getFloatTimeDomainData(wave)
    let bin = 0
    for (let i = 1; i < spectrum.length; i++) if (spectrum[i] > spectrum[bin]) bin = i
    const level = Math.sqrt(wave.reduce((sum, x) => sum + x * x, 0) / wave.length)
    const peakHz = bin * ac.sampleRate / analyser.fftSize
    report(name, { type: 'audio', userId: peer.userId, peakHz, level })
  }, 500)
}

// A member that greets every peer in its `open` handler, the first moment the API allows:
// `hello from NAME` as text, then the same as binary (with `greetLater`, in the next task).
// With `tone`, it also sends a sine of
// that frequency as stream and track `voice`, and listens to every stream it is sent.
function join ({ name, url, token, room, tone, greetLater }) {
  const streams = tone ? { voice: { voice: { track: toneTrack(tone) } } } : undefined
  const member = new JsMember(url, token, room, (event) => report(name, event), streams)
  member.swarm.on('stream', (stream, streamName, peer) => {
    report(name, { type: 'stream', userId: peer.userId, text: streamName })
    listen(name, stream, peer)
  })
  member.swarm.on('open', (peer) => {
    const greet = () => {
      const hello = `hello from ${name}`
      peer.send(hello)
      peer.send(new TextEncoder().encode(hello).buffer)
    }
    // `later`: a task after the open handler, which steps around Chromium's loss of sends
    // made in the handler of a channel the remote announced (the known_bug_ tests' doc).
    if (greetLater) setTimeout(greet, 0)
    else greet()
  })
  member.swarm.on('error', (error, peer) => {
    report(name, { type: 'error', userId: peer ? peer.userId : null, error: String(error) })
  })
  members.set(name, member)
}

const commands = {
  join,
  send: ({ name, userId, text }) => members.get(name).sendText(userId, text),
  close: ({ name }) => members.get(name).close(),
  mute: ({ name }) => members.get(name).swarm.muteTrack('voice')
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
