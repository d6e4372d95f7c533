// Builds the playground and the writing room into dist/, the folder the `znovel` binary
// embeds (api/src/server/playground.rs). The output is reproducible: the same sources and
// package-lock.json give the same bytes, file names included (content hashes), so
//
//   node build.mjs            rebuilds dist/
//   node build.mjs --check    builds into a temporary folder and fails, naming the files,
//                             when dist/ differs from it (the committed assets are stale)
//
// Monaco's workers (editor, JSON, GraphQL) are bundled on their own first; the page
// bundles get their URLs as __ZN_WORKERS__ (see src/playground/workers.js). Each asset
// larger than 1 KiB also gets a gzip copy (`name.gz`) that the server sends to browsers
// accepting it; the check compares what a copy decompresses to, not its bytes, since two
// zlib versions may compress alike data differently.

import * as esbuild from 'esbuild';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gunzipSync, gzipSync, constants as zlib } from 'node:zlib';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const ASSET_PREFIX = '/assets/';

/** Browsers the pages support: what shipped in 2023 onwards. */
const TARGET = ['es2022', 'chrome111', 'edge111', 'firefox111', 'safari16.4'];

const WORKERS = {
  editor: 'node_modules/monaco-editor/esm/vs/editor/editor.worker.js',
  json: 'node_modules/monaco-editor/esm/vs/language/json/json.worker.js',
  graphql: 'node_modules/monaco-graphql/esm/graphql.worker.js',
};

const PAGES = {
  playground: 'src/playground/index.jsx',
  write: 'src/write/index.js',
};

/**
 * Monaco's ES modules import their own CSS files one by one; a code-split esbuild bundle
 * would emit those for the lazily loaded chunks without loading them. Its complete
 * stylesheet is imported once instead (src/playground/index.jsx), and these are dropped.
 */
const monacoCss = {
  name: 'monaco-css',
  setup(build) {
    build.onResolve({ filter: /\.css$/ }, (args) =>
      args.importer.includes('/node_modules/monaco-editor/esm/') ? { path: args.path, namespace: 'monaco-css' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'monaco-css' }, () => ({ contents: '', loader: 'css' }));
  },
};

const common = {
  absWorkingDir: root,
  bundle: true,
  minify: true,
  target: TARGET,
  metafile: true,
  logLevel: 'warning',
  charset: 'utf8',
  define: { 'process.env.NODE_ENV': '"production"' },
};

/** Output files of a build whose entry point is `entry`: `{ js, css }`, as URLs. */
function outputsOf(metafile, entry) {
  for (const [file, out] of Object.entries(metafile.outputs)) {
    if (out.entryPoint === entry) {
      return {
        js: ASSET_PREFIX + basename(file),
        css: out.cssBundle ? ASSET_PREFIX + basename(out.cssBundle) : null,
      };
    }
  }
  throw new Error(`no output for ${entry}`);
}

/** Builds everything into `outDir` (emptied first). */
export async function build(outDir) {
  rmSync(outDir, { recursive: true, force: true });
  const assets = join(outDir, 'assets');
  mkdirSync(assets, { recursive: true });

  const workers = await esbuild.build({
    ...common,
    entryPoints: Object.fromEntries(Object.entries(WORKERS).map(([label, path]) => [`${label}.worker`, path])),
    format: 'iife',
    outdir: assets,
    entryNames: '[name]-[hash]',
  });
  const workerUrls = Object.fromEntries(
    Object.entries(WORKERS).map(([label, path]) => [label, outputsOf(workers.metafile, path).js]),
  );

  const pages = await esbuild.build({
    ...common,
    entryPoints: PAGES,
    format: 'esm',
    splitting: true,
    outdir: assets,
    entryNames: '[name]-[hash]',
    chunkNames: 'chunk-[hash]',
    assetNames: '[name]-[hash]',
    loader: { '.ttf': 'file' },
    jsx: 'automatic',
    define: { ...common.define, __ZN_WORKERS__: JSON.stringify(workerUrls) },
    plugins: [monacoCss],
  });

  for (const [page, entry] of Object.entries(PAGES)) {
    const { js, css } = outputsOf(pages.metafile, entry);
    const template = readFileSync(join(root, 'src/pages', `${page}.html`), 'utf8');
    const html = template
      .replace('{{css}}', css ? `<link rel="stylesheet" href="${css}">` : '')
      .replace('{{js}}', js);
    writeFileSync(join(outDir, `${page}.html`), html);
  }

  for (const file of readdirSync(assets)) {
    const path = join(assets, file);
    const bytes = readFileSync(path);
    if (bytes.length > 1024) writeFileSync(`${path}.gz`, gzipSync(bytes, { level: zlib.Z_BEST_COMPRESSION }));
  }
}

/** Every file under `dir`, relative to it, sorted. */
function listFiles(dir, base = dir) {
  return readdirSync(dir)
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? listFiles(path, base) : [relative(base, path)];
    })
    .sort();
}

/** The differences between two built folders, one line each (none: empty). */
function differences(expected, actual) {
  const want = listFiles(expected);
  const have = listFiles(actual);
  const problems = [];
  const read = (dir, f) => (f.endsWith('.gz') ? gunzipSync(readFileSync(join(dir, f))) : readFileSync(join(dir, f)));
  for (const f of want) {
    if (!have.includes(f)) problems.push(`missing: ${f}`);
    else if (!read(expected, f).equals(read(actual, f))) problems.push(`differs: ${f}`);
  }
  for (const f of have) if (!want.includes(f)) problems.push(`not built from the sources: ${f}`);
  return problems;
}

const dist = join(root, 'dist');
if (process.argv.includes('--check')) {
  const fresh = mkdtempSync(join(tmpdir(), 'znovel-playground-'));
  try {
    await build(fresh);
    const problems = differences(fresh, dist);
    if (problems.length) {
      console.error(`web-playground/dist is stale (rebuild: scripts/playground.sh build):\n  ${problems.join('\n  ')}`);
      process.exit(1);
    }
    console.log(`web-playground/dist is up to date (${listFiles(dist).length} files)`);
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await build(dist);
  const sizes = listFiles(dist).map((f) => `${String(statSync(join(dist, f)).size).padStart(9)}  ${f}`);
  console.log(`built web-playground/dist:\n${sizes.join('\n')}`);
}
