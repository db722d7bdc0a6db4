// Clients edit at the same position at the same moment, round after round, and converge.
//
// Configuration (argv[2], JSON): {url, noteId, clients: [{name, cookie} | {name, token}],
// rounds, limitMs}. In each round every client inserts its own token at the same index of
// the text it sees, within one tick of the event loop, so that no client has received
// another's insert yet: the inserts are truly concurrent. Rounds alternate the index
// between the start, a boundary in the middle and the end (always between two tokens).
// Then every client deletes the same first token at once (concurrent deletions of the
// same characters). Prints "final" with every text, the tokens typed and the one deleted.

import {
  connectClient,
  emit,
  finish,
  readConfig,
  sleep,
  waitFor,
  waitSynced,
  watchdog,
} from "./common.mjs";

const config = readConfig();
const limitMs = config.limitMs ?? 20000;
let clients = [];
watchdog(limitMs * 4, () => clients);

clients = config.clients.map((spec) => connectClient(config.url, config.noteId, spec));
if (!(await waitSynced(clients, limitMs))) await finish(clients, 2, { failed: "initial sync" });

const [first] = clients;
first.text.insert(0, "Hello|");
const same = () => clients.every((c) => c.value() === clients[0].value());
if (!(await waitFor(() => clients.every((c) => c.value() === "Hello|"), limitMs))) {
  await finish(clients, 2, { failed: "first insert" });
}

const expected = ["Hello|"];
for (let round = 1; round <= config.rounds; round += 1) {
  const value = clients[0].value();
  const boundaries = [0, ...[...value].flatMap((c, i) => (c === ">" || c === "|" ? [i + 1] : []))];
  const middle = boundaries[Math.floor(boundaries.length / 2)];
  const index = [0, middle, value.length][round % 3];
  // Same tick: no client can have received the others' inserts.
  for (const client of clients) {
    const token = `<${client.name}${round}>`;
    client.text.insert(index, token);
    expected.push(token);
  }
  emit("round", { round, index });
  const total = expected.join("").length;
  if (!(await waitFor(() => same() && clients[0].value().length === total, limitMs))) {
    await finish(clients, 2, { failed: `round ${round}` });
  }
}

// Everyone deletes the same first token at once.
const value = clients[0].value();
const ends = [">", "|"].map((c) => value.indexOf(c)).filter((i) => i >= 0);
const doomed = value.slice(0, Math.min(...ends) + 1);
for (const client of clients) client.text.delete(0, doomed.length);
emit("deleted", { doomed });
const afterLength = expected.join("").length - doomed.length;
const converged = await waitFor(() => same() && clients[0].value().length === afterLength, limitMs);
await sleep(50); // let a stray duplicate show itself, if the server sent one
finish(clients, converged ? 0 : 2, { converged, doomed, expected });
