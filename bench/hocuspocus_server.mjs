// Hocuspocus with its default settings, for the side-by-side rows of docs/performance.md.
// Usage: node bench/hocuspocus_server.mjs <port>. No extension, no persistence: only the
// in-memory document and the fan-out, which is what cop's live notes are compared with.
import { Server } from "@hocuspocus/server";

const port = Number(process.argv[2] ?? 1234);
const server = new Server({ port, address: "127.0.0.1", quiet: true });
await server.listen();
process.stdout.write(`hocuspocus listening on ${port}\n`);
