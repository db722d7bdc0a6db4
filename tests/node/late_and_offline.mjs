// Late joiners and clients that come back after a disconnect with offline edits.
//
// Configuration (argv[2], JSON): {url, noteId, limitMs, clients: {A, B, C, D}} where each
// client is {cookie} or {token}.
//   1. A joins alone and types; B joins late and must receive what A typed.
//   2. B goes offline (provider.disconnect(), as the application would) and types;
//      meanwhile A types too. B comes back (provider.connect()).
//   3. D's connection drops (its engine closes, as a network failure would); D types while
//      it is away and socket.io-client reconnects by itself.
//   4. C joins last with an empty document and must receive everything.
// Prints "offline" (what A saw while B was away), "final" (every text, every token typed).

import { connectClient, emit, finish, readConfig, sleep, waitFor, watchdog } from "./common.mjs";

const config = readConfig();
const limitMs = config.limitMs ?? 20000;
const clients = [];
watchdog(limitMs * 6, () => clients);
const typed = [];

function connect(name) {
  const client = connectClient(config.url, config.noteId, { name, ...config.clients[name] });
  clients.push(client);
  return client;
}

/** Insert `<token>` at the start or the end of what the client sees, and remember it. */
function type(client, token, where) {
  client.text.insert(where === "start" ? 0 : client.text.length, `<${token}>`);
  typed.push(`<${token}>`);
}

const contains = (client, tokens) => tokens.every((t) => client.value().includes(t));
const allSame = () => clients.every((c) => c.value() === clients[0].value());

async function check(condition, step) {
  if (!(await waitFor(condition, limitMs))) await finish(clients, 2, { failed: step, typed });
  emit("step", { step });
}

// 1. A alone, then B late.
const a = connect("A");
await check(() => a.connected(), "A connected");
for (let i = 1; i <= 5; i += 1) type(a, `A${i}`, "end");
const b = connect("B");
await check(() => contains(b, typed), "B joined late and has A's text");

// 2. B offline, both type, B back.
b.provider.disconnect();
await check(() => !b.connected(), "B offline");
for (let i = 1; i <= 5; i += 1) {
  type(b, `B-offline${i}`, "start");
  type(a, `A-meanwhile${i}`, "end");
  await sleep(20);
}
// The same delete offline on B and online on A: it must count once.
const shared = "<A1>";
for (const client of [a, b]) {
  const at = client.value().indexOf(shared);
  client.text.delete(at, shared.length);
}
typed.splice(typed.indexOf(shared), 1);
await check(() => !a.value().includes(shared), "A's delete applied");
emit("offline", { aText: a.value(), bText: b.value(), bConnected: b.connected() });
b.provider.connect();
await check(() => allSame() && contains(a, typed) && contains(b, typed), "B back, A and B agree");

// 3. D's network drops; it types while away; it reconnects by itself.
const d = connect("D");
await check(() => d.connected() && contains(d, typed), "D joined");
const reconnectionsBefore = d.connections;
d.provider.socket.io.engine.close();
await check(() => !d.connected(), "D's connection dropped");
for (let i = 1; i <= 5; i += 1) type(d, `D-away${i}`, i % 2 ? "start" : "end");
emit("away", { dConnected: d.connected() });
await check(() => d.connections > reconnectionsBefore, "D reconnected by itself");
await check(() => allSame() && clients.every((c) => contains(c, typed)), "A, B, D agree");

// 4. C joins last, with nothing.
const c = connect("C");
await check(() => allSame() && contains(c, typed), "C joined last and has everything");
await sleep(50); // let a stray duplicate show itself, if the server sent one
finish(clients, 0, { typed });
