// Build the live pages' bundles: static/src/{note,room}.js -> static/dist/ (`npm run build`).
//
// The output is committed and CI rebuilds it from the lock file and compares the bytes, so
// the build must be reproducible: pinned esbuild, no source map (it would carry paths of
// this machine), no timestamps, and the same options everywhere.

import { build } from "esbuild";
import { statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const staticDir = dirname(fileURLToPath(import.meta.url));
const entryPoints = ["note.js", "room.js"];

await build({
  absWorkingDir: staticDir,
  entryPoints: entryPoints.map((name) => join("src", name)),
  outdir: "dist",
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2020",
  platform: "browser",
  charset: "utf8",
  legalComments: "eof",
  sourcemap: false,
  logLevel: "warning",
});

for (const name of entryPoints) {
  const path = join(staticDir, "dist", name);
  console.log(`built static/dist/${name}: ${statSync(path).size} bytes`);
}
