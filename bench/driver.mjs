// Load driver of docs/performance.md: N clients in one note, each inserting a short unique
// token at a random position every `intervalMs` for `seconds`, against cop (y-socket.io
// protocol over Socket.IO) or Hocuspocus (its own protocol over a plain WebSocket).
//
// Most clients are *light*: a raw connection that speaks just enough of the protocol to be a
// real member of the room (cop: answers the server's sync-step-1 with an empty update;
// Hocuspocus: sends its auth message), sends real Yjs updates made in a small Y.Doc of its
// own, and detects arrivals by searching the received bytes for the tokens (`[c17e42]`),
// without applying anything. A light writer's Y.Doc holds only its own insertions, so its
// "random position" is random among its own earlier tokens: every update it sends is valid
// (its origins are its own items, which the server already has) and lands at a spread of
// positions in the shared text. `full` clients are the real providers (y-socket.io's
// SocketIOProvider with disableBc: true, or HocuspocusProvider): they keep the whole document,
// insert at random positions of it, count a token as arrived when their Y.Doc applies it, and
// check convergence at the end.
//
// Usage: node bench/driver.mjs '<json config>'; prints JSON lines (`{"event": ...}`) and
// exits by itself. Config: {server: "cop"|"hocuspocus", urls: [...], noteId, docName,
// tokens: [...] (one per client, cop), apiUrl, apiToken, n, full, seconds, intervalMs,
// drainSeconds, deflate, seed}.

import { createRequire } from "node:module";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import path from "node:path";

const config = JSON.parse(process.argv[2]);
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const BENCH = path.join(ROOT, "bench");
const STARTED = performance.now();

function emit(event, fields = {}) {
  process.stdout.write(`${JSON.stringify({ event, ms: Math.round(performance.now() - STARTED), ...fields })}\n`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition, limitMs, pollMs = 20) {
  const deadline = performance.now() + limitMs;
  while (performance.now() < deadline) {
    if (condition()) return true;
    await sleep(pollMs);
  }
  return condition();
}

function randomGenerator(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// One Yjs instance per side: y-socket.io and socket.io-client resolve from the project's
// node_modules, Hocuspocus's packages (and their yjs) from bench/node_modules.
async function importFrom(base, name) {
  const require = createRequire(path.join(base, "noop.js"));
  let resolved;
  try {
    resolved = require.resolve(name);
  } catch {
    resolved = null;
  }
  // Prefer the ESM build when the package has one.
  const pkgDir = path.join(base, "node_modules", name);
  const pkg = JSON.parse((await import("node:fs")).readFileSync(path.join(pkgDir, "package.json"), "utf8"));
  const esm = pkg.module || (pkg.exports && pkg.exports["."] && (pkg.exports["."].import?.default || pkg.exports["."].import));
  const file = typeof esm === "string" ? path.join(pkgDir, esm) : resolved;
  return import(pathToFileURL(file).href);
}

const side = config.server === "cop" ? ROOT : BENCH;
const Y = await importFrom(side, "yjs");
const WS = (await importFrom(ROOT, "ws")).WebSocket ?? (await importFrom(ROOT, "ws")).default;

const N = config.n;
const FULL = Math.min(config.full ?? 4, N);
const SECONDS = config.seconds ?? 20;
const INTERVAL = config.intervalMs ?? 200;
const MAX_EDITS = Math.ceil((SECONDS * 1000) / INTERVAL) + 2;
const random = randomGenerator(config.seed ?? 1);
const TOKEN = /\[c(\d+)e(\d+)\]/g;

// A random position that does not split an earlier token (so the final text can be checked
// token by token): a random offset, moved forward to the next token's start.
function boundary(text) {
  const value = text.toString();
  const at = value.indexOf("[", Math.floor(random() * (value.length + 1)));
  return at < 0 ? value.length : at;
}

const sentAt = new Float64Array(N * MAX_EDITS).fill(-1);
let tokensSent = 0;
const latencies = [];
let deliveries = 0;
let duplicates = 0;
let stray = 0;
const errors = [];

function makeReceiver(index) {
  const seen = new Uint8Array(N * MAX_EDITS);
  return (bytes) => {
    const now = performance.now();
    const text = Buffer.from(bytes.buffer ?? bytes, bytes.byteOffset ?? 0, bytes.byteLength).toString("latin1");
    for (const match of text.matchAll(TOKEN)) {
      const client = Number(match[1]);
      if (client === index) continue; // its own token coming back
      const id = client * MAX_EDITS + Number(match[2]);
      if (id >= sentAt.length || sentAt[id] < 0) {
        stray += 1;
        continue;
      }
      if (seen[id]) {
        duplicates += 1;
        continue;
      }
      seen[id] = 1;
      deliveries += 1;
      latencies.push(now - sentAt[id]);
    }
  };
}

// --- cop: the y-socket.io protocol over Socket.IO -----------------------------------------

async function copClients() {
  const { SocketIOProvider } = await importFrom(ROOT, "y-socket.io");
  const clients = [];
  for (let i = 0; i < N; i++) {
    const url = config.urls[i % config.urls.length];
    const token = config.tokens[i];
    const receive = makeReceiver(i);
    const socketOptions = { transports: ["websocket"], perMessageDeflate: config.deflate ? { threshold: 1024 } : false };
    if (i < FULL) {
      const doc = new Y.Doc();
      const text = doc.getText("markdown");
      const provider = new SocketIOProvider(url, `note-${config.noteId}`, doc, { disableBc: true, autoConnect: true, auth: { token } }, socketOptions);
      let synced = false;
      provider.on("sync", (value) => { if (value) synced = true; });
      doc.on("update", (update, origin) => { if (origin !== null) receive(update); });
      provider.socket.on("note-error", (e) => errors.push({ client: i, ...e }));
      clients.push({
        index: i, full: true, doc, text, provider,
        ready: () => synced && provider.socket.connected,
        insert(token) { text.insert(boundary(text), token); },
        value: () => text.toString(),
        close: () => provider.destroy(),
      });
    } else {
      const doc = new Y.Doc();
      const text = doc.getText("markdown");
      let last = null;
      doc.on("update", (update) => { last = update; });
      const socket = copLightSocket(url, `/yjs|note-${config.noteId}`, token, receive, (e) => errors.push({ client: i, ...e }));
      clients.push({
        index: i, full: false, socket,
        ready: () => socket.synced && socket.readyState === 1,
        insert(token) {
          text.insert(boundary(text), token);
          socket.emitBinary("sync-update", last);
        },
        close: () => socket.close(),
      });
    }
    if (i % 20 === 19) await sleep(50); // do not stampede the server's accept loop
  }
  return clients;
}

// A light cop client speaks Socket.IO (Engine.IO 4) over a plain WebSocket, as the light
// Hocuspocus client speaks its protocol. A socket.io-client per light client made the
// driver use 0.33 of its core instead of 0.27 at N = 50 (0.45 instead of 0.32 at N = 100),
// and cop's messages come in bursts (one per group-commit window), so that cost delayed
// the arrivals the driver timed. It joins the namespace with its token,
// answers the server's sync-step-1 with the empty update, answers pings, and hands every
// binary frame (an event's attachment: a merged update) to `receive`.
function copLightSocket(url, namespace, token, receive, reportError) {
  const socket = new WS(`${url.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`, {
    perMessageDeflate: config.deflate ? { threshold: 1024 } : false,
  });
  socket.binaryType = "nodebuffer";
  socket.synced = false;
  let ackDue = null; // the id of the server's sync-step-1, answered once its attachment arrives
  const binaryEventHead = `451-${namespace},`; // an event with one attachment
  socket.emitBinary = (event, bytes) => {
    socket.send(`${binaryEventHead}${JSON.stringify([event, { _placeholder: true, num: 0 }])}`);
    socket.send(bytes);
  };
  socket.on("message", (data, isBinary) => {
    if (isBinary) {
      if (ackDue !== null) {
        socket.send(`461-${namespace},${ackDue}${JSON.stringify([{ _placeholder: true, num: 0 }])}`);
        socket.send(new Uint8Array([0, 0]));
        ackDue = null;
        socket.synced = true;
      }
      receive(data);
      return;
    }
    const packet = data.toString();
    if (packet === "2") socket.send("3"); // Engine.IO ping, pong
    else if (packet.startsWith("0")) socket.send(`40${namespace},${JSON.stringify({ token })}`);
    else if (packet.startsWith(`44${namespace},`)) reportError({ connect_error: packet });
    else if (packet.startsWith(binaryEventHead)) {
      const ack = /^451-[^,]*,(\d+)\["sync-step-1"/.exec(packet);
      if (ack) ackDue = ack[1];
    } else if (packet.startsWith(`42${namespace},`)) {
      const [event, detail] = JSON.parse(packet.slice(namespace.length + 3));
      if (event === "note-error") reportError(detail);
    }
  });
  socket.on("error", (e) => reportError({ error: String(e.message) }));
  return socket;
}

async function copServerText() {
  const response = await fetch(`${config.apiUrl}/api/v1/notes/${config.noteId}`, {
    headers: { Authorization: `Bearer ${config.tokens[0]}` },
  });
  return (await response.json()).text;
}

// --- Hocuspocus: its protocol ([docName][type][payload]) over a WebSocket ------------------

async function hocuspocusClients() {
  const { HocuspocusProvider } = await importFrom(BENCH, "@hocuspocus/provider");
  const encoding = await import(pathToFileURL(path.join(BENCH, "node_modules/lib0/encoding.js")).href);
  const name = config.docName;
  const frame = (write) => {
    const encoder = encoding.createEncoder();
    encoding.writeVarString(encoder, name);
    write(encoder);
    return encoding.toUint8Array(encoder);
  };
  const clients = [];
  for (let i = 0; i < N; i++) {
    const url = config.urls[i % config.urls.length];
    const receive = makeReceiver(i);
    if (i < FULL) {
      const doc = new Y.Doc();
      const text = doc.getText("markdown");
      let synced = false;
      const provider = new HocuspocusProvider({
        url, name, document: doc, token: "bench", WebSocketPolyfill: WS,
        onSynced: () => { synced = true; },
      });
      doc.on("update", (update, origin) => { if (origin !== null) receive(update); });
      clients.push({
        index: i, full: true, doc, text, provider,
        ready: () => synced,
        insert(token) { text.insert(boundary(text), token); },
        value: () => text.toString(),
        close: () => provider.destroy(),
      });
    } else {
      const socket = new WS(url, { perMessageDeflate: !!config.deflate });
      socket.binaryType = "nodebuffer";
      const doc = new Y.Doc();
      const text = doc.getText("markdown");
      let last = null;
      doc.on("update", (update) => { last = update; });
      let authenticated = false;
      socket.on("open", () => {
        // Auth (2) / Token (0) / token, then sync step 1 (0/0) with an empty state vector.
        socket.send(frame((e) => { encoding.writeVarUint(e, 2); encoding.writeVarUint(e, 0); encoding.writeVarString(e, "bench"); }));
        socket.send(frame((e) => { encoding.writeVarUint(e, 0); encoding.writeVarUint(e, 0); encoding.writeVarUint8Array(e, Y.encodeStateVector(doc)); }));
      });
      socket.on("message", (data) => {
        if (!authenticated) authenticated = true; // the first answer is "Authenticated"
        receive(data);
      });
      socket.on("error", (e) => errors.push({ client: i, error: String(e.message) }));
      clients.push({
        index: i, full: false, socket,
        ready: () => authenticated && socket.readyState === 1,
        insert(token) {
          text.insert(boundary(text), token);
          socket.send(frame((e) => { encoding.writeVarUint(e, 0); encoding.writeVarUint(e, 2); encoding.writeVarUint8Array(e, last); }));
        },
        close: () => socket.close(),
      });
    }
    if (i % 20 === 19) await sleep(50);
  }
  return clients;
}

// --- The run ---------------------------------------------------------------------------

const clients = config.server === "cop" ? await copClients() : await hocuspocusClients();
const allReady = await waitFor(() => clients.every((c) => c.ready()), 60000);
if (!allReady) {
  emit("error", { reason: "not every client connected", ready: clients.filter((c) => c.ready()).length, errors: errors.slice(0, 5) });
  process.exit(2);
}
// What the WebSocket handshake negotiated (permessage-deflate or not), seen from a light client.
const probe = clients.find((c) => !c.full);
let extensions = null;
try {
  extensions = probe ? probe.socket.extensions : null;
} catch (e) {
  extensions = `unknown: ${e}`;
}
emit("ready", { clients: N, full: FULL, extensions });
await sleep(500); // the orchestrator samples the server's CPU on "ready"

const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();
const cpuStart = process.cpuUsage();
const wallStart = performance.now();
const timers = [];
await new Promise((resolve) => {
  let running = N;
  for (const client of clients) {
    let edit = 0;
    const start = () => {
      const timer = setInterval(() => {
        if (performance.now() - wallStart >= SECONDS * 1000 || edit >= MAX_EDITS) {
          clearInterval(timer);
          running -= 1;
          if (running === 0) resolve();
          return;
        }
        const token = `[c${client.index}e${edit}]`;
        sentAt[client.index * MAX_EDITS + edit] = performance.now();
        edit += 1;
        tokensSent += 1;
        client.insert(token);
      }, INTERVAL);
      timers.push(timer);
    };
    setTimeout(start, random() * INTERVAL); // stagger the clients over one interval
  }
});
emit("edits-done", { tokensSent });
const expected = tokensSent * (N - 1);
await waitFor(() => deliveries >= expected, (config.drainSeconds ?? 10) * 1000, 50);
const cpu = process.cpuUsage(cpuStart);
const wall = (performance.now() - wallStart) / 1000;
loopDelay.disable();
emit("drained", { deliveries, expected });

// Convergence: the full clients agree, hold every token, and (cop) equal the server's text.
const full = clients.filter((c) => c.full);
await waitFor(() => full.every((c) => c.value() === full[0].value()), 5000);
const texts = full.map((c) => c.value());
const reference = texts[0] ?? "";
const tokensInText = (reference.match(TOKEN) ?? []).length;
let serverText = null;
if (config.server === "cop" && config.apiUrl) {
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      serverText = await copServerText();
      if (serverText === reference) break;
    } catch (e) {
      serverText = `error: ${e}`;
    }
    await sleep(250);
  }
}

if (typeof serverText === "string" && serverText !== reference) {
  const fs = await import("node:fs");
  const base = path.join(BENCH, "results", `mismatch-n${N}-${Date.now()}`);
  fs.writeFileSync(`${base}-clients.txt`, reference);
  fs.writeFileSync(`${base}-server.txt`, serverText);
}
latencies.sort((a, b) => a - b);
const pick = (q) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : null);
const round = (x) => (x === null ? null : Math.round(x * 10) / 10);
emit("result", {
  server: config.server,
  n: N,
  full: FULL,
  tokensSent,
  expected,
  deliveries,
  lost: expected - deliveries,
  duplicates,
  stray,
  p50: round(pick(0.5)),
  p95: round(pick(0.95)),
  p99: round(pick(0.99)),
  max: round(latencies.length ? latencies[latencies.length - 1] : null),
  converged: texts.every((t) => t === reference) && tokensInText === tokensSent && (serverText === null || serverText === reference),
  fullClientsAgree: texts.every((t) => t === reference),
  tokensInText,
  fullClients: full.map((c, k) => ({ length: texts[k].length, tokens: (texts[k].match(TOKEN) ?? []).length, connected: c.ready() })),
  serverTextMatches: serverText === null ? null : serverText === reference,
  serverTextTokens: typeof serverText === "string" ? (serverText.match(TOKEN) ?? []).length : null,
  serverTextLength: typeof serverText === "string" ? serverText.length : null,
  driverCpuSeconds: round((cpu.user + cpu.system) / 1e6),
  driverCpuShare: Math.round(((cpu.user + cpu.system) / 1e6 / wall) * 100) / 100,
  driverLoopDelayP99Ms: round(loopDelay.percentile(99) / 1e6),
  driverLoopDelayMaxMs: round(loopDelay.max / 1e6),
  errors: errors.slice(0, 5),
  errorCount: errors.length,
  extensions,
});
for (const client of clients) client.close();
await sleep(200);
process.exit(0);
