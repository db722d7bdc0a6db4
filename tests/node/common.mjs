// Shared helpers of the Node clients that tests/test_live_node.py drives.
//
// Each client is the unmodified `y-socket.io` provider, created as cop's browser bundle
// creates it (one Y.Doc, the Y.Text "markdown", `disableBc: true`). Identity goes through
// the Socket.IO options: the session cookie in `extraHeaders` (Node's websocket transport
// sends it with the upgrade request) or a personal API token in `auth`.
//
// A script reads its JSON configuration from argv[2] and prints JSON lines on stdout
// (`{"event": ...}`); every wait is bounded, and the script exits by itself.

import * as Y from "yjs";
import { SocketIOProvider } from "y-socket.io";

export { Y };

export const POLL_MS = 20;
const STARTED = Date.now();

/** Print one event as a JSON line. */
export function emit(event, fields = {}) {
  const ms = Date.now() - STARTED;
  process.stdout.write(`${JSON.stringify({ event, ms, ...fields })}\n`);
}

/** Return the configuration passed as a JSON string in argv[2]. */
export function readConfig() {
  if (!process.argv[2]) {
    throw new Error("usage: node script.mjs '<json configuration>'");
  }
  return JSON.parse(process.argv[2]);
}

/** Resolve after `ms` milliseconds. */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Wait until `condition()` holds, polling; return false (never throw) after `limitMs`. */
export async function waitFor(condition, limitMs) {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await sleep(POLL_MS);
  }
  return condition();
}

/** A deterministic pseudo-random generator (mulberry32), so a failing run can be replayed. */
export function randomGenerator(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Connect one client: `spec` is {name, cookie} or {name, token}.
 * Returns {name, doc, text, provider, errors, connections, disconnections, value(),
 * connected()}. `disableBc: true` matters doubly here: every client of a script lives in
 * one Node process, where BroadcastChannel would carry edits between them without the
 * server.
 */
export function connectClient(url, noteId, spec) {
  const doc = new Y.Doc();
  const text = doc.getText("markdown");
  const options = { disableBc: true, autoConnect: true };
  if (spec.token) options.auth = { token: spec.token };
  const socketOptions = spec.cookie ? { extraHeaders: { Cookie: spec.cookie } } : undefined;
  const provider = new SocketIOProvider(url, `note-${noteId}`, doc, options, socketOptions);
  const client = {
    name: spec.name,
    doc,
    text,
    provider,
    errors: [],
    connections: 0,
    disconnections: 0,
    value: () => text.toString(),
    connected: () => provider.socket.connected,
  };
  provider.on("status", ({ status }) => {
    if (status === "connected") client.connections += 1;
    if (status === "disconnected") client.disconnections += 1;
    emit("status", { client: spec.name, status });
  });
  provider.on("connection-error", (error) => {
    emit("connection-error", { client: spec.name, message: String(error?.message ?? error) });
  });
  provider.socket.on("note-error", (payload) => {
    client.errors.push(payload);
    emit("note-error", { client: spec.name, ...payload });
  });
  return client;
}

/** Wait until every client is connected and has answered the server's sync-step-1. */
export function waitSynced(clients, limitMs) {
  return waitFor(() => clients.every((c) => c.connected() && c.provider.synced), limitMs);
}

/**
 * Report every client's text, then stop them all and exit with `code`. Returns a promise
 * that never settles: `await finish(...)` stops the caller there.
 */
export function finish(clients, code = 0, fields = {}) {
  emit("final", {
    ...fields,
    texts: Object.fromEntries(clients.map((c) => [c.name, c.value()])),
    errors: Object.fromEntries(clients.map((c) => [c.name, c.errors])),
  });
  for (const client of clients) client.provider.destroy();
  // The provider's awareness keeps a timer (and, after disconnect(), a BroadcastChannel)
  // alive: leave explicitly once stdout has been flushed.
  process.stdout.write("", () => process.exit(code));
  return new Promise(() => {});
}

/** Stop the script if it outlives `limitMs` (a last resort; the test also has a timeout). */
export function watchdog(limitMs, clients) {
  const timer = setTimeout(() => {
    emit("watchdog", { limitMs });
    finish(clients(), 3);
  }, limitMs);
  timer.unref();
}
