// Packs each built asset beside itself, brotli (.br) and gzip (.gz), once at build time: the
// gateway serves the copy the browser accepts (services/gateway/console.py), so a store's
// intranet link carries about a third of the bytes and nothing is compressed per request.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const assets = new URL("../dist/assets/", import.meta.url).pathname;
const packable = /\.(js|css|svg|json|html|txt|map)$/;

for (const name of readdirSync(assets)) {
  if (!packable.test(name)) continue;
  const path = join(assets, name);
  const raw = readFileSync(path);
  writeFileSync(`${path}.br`, brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
  writeFileSync(`${path}.gz`, gzipSync(raw, { level: 9 }));
}
