// Clients type unique tokens at random places while the test kills and restarts the server.
//
// Configuration (argv[2], JSON): {url, noteId, clients: [{name, cookie} | {name, token}],
// tokens, intervalMs, pauseAfter, offlineAtLeast, afterResume, seed, limitMs}.
// Every client types `<NAME1>` ... `<NAME{tokens}>`, each at a random boundary between
// tokens of the text it sees (so that tokens never split), about every `intervalMs`.
// Phases, per client, set by what the client saw rather than by timing:
//   - it types on; once it has typed `pauseAfter` tokens and at least `offlineAtLeast` of
//     them while cut off from the server (the test kills it meanwhile), it waits for the
//     line "resume" on stdin, which the test sends once the restarted server answers;
//   - it types `afterResume` more tokens (connected again or not yet), then waits until
//     socket.io-client has reconnected by itself, and types the rest.
// Once everyone has typed everything, it waits until every client holds every token.
// Prints "typed" for each token (with whether the client was connected), then "final".

import readline from "node:readline";
import {
  connectClient,
  emit,
  finish,
  randomGenerator,
  readConfig,
  sleep,
  waitFor,
  waitSynced,
  watchdog,
  Y,
} from "./common.mjs";

const config = readConfig();
const limitMs = config.limitMs ?? 60000;
let clients = [];
watchdog(limitMs * 4, () => clients);

let resume;
const resumed = new Promise((resolve) => {
  resume = resolve;
});
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() === "resume") resume();
});

clients = config.clients.map((spec) => connectClient(config.url, config.noteId, spec));
if (!(await waitSynced(clients, limitMs))) await finish(clients, 2, { failed: "initial sync" });
emit("ready", { seed: config.seed });

const typed = [];
const offline = Object.fromEntries(clients.map((c) => [c.name, 0]));

const afterReconnection = Object.fromEntries(clients.map((c) => [c.name, 0]));

async function typist(client, index) {
  const random = randomGenerator(config.seed + index);
  let phase = "before"; // "before" the pause, "resumed", then "reconnected"
  let sinceResume = 0;
  for (let i = 1; i <= config.tokens; i += 1) {
    const cutOffLongEnough = offline[client.name] >= config.offlineAtLeast;
    if (phase === "before" && i > config.pauseAfter && cutOffLongEnough) {
      emit("paused", { client: client.name, i });
      const timeout = sleep(limitMs).then(() => false);
      if (!(await Promise.race([resumed.then(() => true), timeout]))) {
        await finish(clients, 2, { failed: "no resume", typed, offline });
      }
      phase = "resumed";
    }
    if (phase === "resumed" && sinceResume === config.afterResume) {
      if (!(await waitFor(client.connected, limitMs))) {
        await finish(clients, 2, { failed: `${client.name} did not reconnect`, typed, offline });
      }
      emit("typing-on-reconnected", { client: client.name, i });
      phase = "reconnected";
    }
    const value = client.value();
    const boundaries = [0, ...[...value].flatMap((c, at) => (c === ">" ? [at + 1] : []))];
    const at = boundaries[Math.floor(random() * boundaries.length)];
    const token = `<${client.name}${i}>`;
    client.text.insert(at, token);
    typed.push(token);
    const connected = client.connected();
    if (!connected) offline[client.name] += 1;
    if (phase === "resumed") sinceResume += 1;
    if (phase === "reconnected") afterReconnection[client.name] += 1;
    emit("typed", { client: client.name, i, connected });
    await sleep(config.intervalMs * (0.5 + random()));
  }
}

await Promise.all(clients.map(typist));
emit("done-typing", { count: typed.length });

const holdsEverything = (client) => {
  const value = client.value();
  return typed.every((token) => value.includes(token));
};
const converged = await waitFor(
  () => clients.every((c) => c.value() === clients[0].value() && holdsEverything(c)),
  limitMs,
);
await sleep(50); // let a stray duplicate show itself, if the server sent one
const reconnections = Object.fromEntries(clients.map((c) => [c.name, c.connections - 1]));
// Each client's whole document, for a failure report (base64 of a Yjs update).
const states = Object.fromEntries(
  clients.map((c) => [c.name, Buffer.from(Y.encodeStateAsUpdate(c.doc)).toString("base64")]),
);
const fields = { converged, typed, offline, afterReconnection, reconnections, states };
await finish(clients, converged ? 0 : 2, fields);
