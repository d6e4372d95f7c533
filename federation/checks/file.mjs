// The file subgraph through the gateway, and the file service's own routes beside it.
//
// Upload: Hive Router (the production gateway) refuses a GraphQL multipart request — the
// only way `importManuscript` takes a file — with 415 UNSUPPORTED_CONTENT_TYPE, so the
// manuscript goes to the file service's `POST /files/import` (in the cluster the Ingress
// sends `/files` to the file Service; here `ctx.files` is the file role's address behind a
// router, the server's own for the all-in-one server). Through Hive Router the check asserts
// that refusal, so the day the router carries uploads this check says so. The IMPORT job is
// then followed through the gateway (`generationJob`: its status from story-gen, its `file`
// — the manuscript — from the file subgraph, an entity field of `GenerationJob`), and the
// imported chapters are read through the gateway.
//
// Export and download: `exportNovel` (TXT and EPUB) through the gateway, the job followed to
// SUCCEEDED, then its `file.downloadUrl` fetched from the file service: the book holds the
// chapters' titles and text. `files(novelId)` lists the manuscript and the books,
// `deleteFile` removes one; a forged download token, a missing novel and a missing
// credential are refused.

import assert from 'node:assert/strict';
import { inflateRawSync } from 'node:zlib';
import { data, failure, missingId } from '../lib/client.mjs';

/** A small manuscript: two chapters, one of them under a Chinese heading. */
export const MANUSCRIPT = [
  'Chapter 1 The Harbour',
  'Rain fell on the harbour roofs while the ferry waited.',
  '',
  '第二章 灯塔',
  '灯塔的光扫过海面，船终于出发了。',
  '',
].join('\n');
const TITLES = ['Chapter 1 The Harbour', '第二章 灯塔'];

const JOB = `query($j: ID!) { generationJob(id: $j) {
  id kind status error progress { done total } file { name contentType size downloadUrl }
} }`;
const NOVEL = `query($n: ID!) { novel(id: $n) { id title chapters(first: 10) { edges { node { seq title content } } } } }`;
const EXPORT = `mutation($i: ExportNovelInput!) { exportNovel(input: $i) { job { id kind status } } }`;
const FILES = `query($n: ID!) { files(novelId: $n) { edges { node { id name contentType size } } } }`;
const DELETE = `mutation($i: DeleteFileInput!) { deleteFile(input: $i) { file { id name } } }`;
const IMPORT_MULTIPART = `mutation($f: Upload!) { importManuscript(input: { file: $f }) { job { id } } }`;
const FINAL = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

/** Polls a job through the gateway until it is final (or 60 s have passed). */
async function finished(gql, id) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const job = data(await gql(JOB, { j: id }), 'generationJob').generationJob;
    if (FINAL.includes(job.status)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} not finished after 60 s: ${JSON.stringify(job)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A file without its `downloadUrl` (its token differs at every read). */
const withoutUrl = (file) => file && Object.fromEntries(Object.entries(file).filter(([k]) => k !== 'downloadUrl'));

/** `POST /files/import` on the file service; resolves with `{ status, body }`. */
async function importFile(files, key, query, body) {
  const headers = { 'content-type': 'text/plain; charset=utf-8' };
  if (key) headers.authorization = `Bearer ${key}`;
  const res = await fetch(`${files}/files/import?${new URLSearchParams(query)}`, {
    method: 'POST',
    headers,
    body,
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed };
}

/** Downloads a file's `downloadUrl` from the file service. */
async function download(files, url) {
  const res = await fetch(`${files}${url}`, { signal: AbortSignal.timeout(30_000) });
  return { status: res.status, contentType: res.headers.get('content-type'), bytes: Buffer.from(await res.arrayBuffer()) };
}

/** The entries of a zip archive (an EPUB), by its central directory: name → text. */
function unzip(buf) {
  const end = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  assert.ok(end >= 0, 'a zip archive');
  const count = buf.readUInt16LE(end + 10);
  let at = buf.readUInt32LE(end + 16);
  const entries = {};
  for (let n = 0; n < count; n++) {
    assert.equal(buf.readUInt32LE(at), 0x02014b50, 'a central directory entry');
    const method = buf.readUInt16LE(at + 10);
    const size = buf.readUInt32LE(at + 20);
    const nameLen = buf.readUInt16LE(at + 28);
    const local = buf.readUInt32LE(at + 42);
    const name = buf.subarray(at + 46, at + 46 + nameLen).toString('utf8');
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const raw = buf.subarray(start, start + size);
    entries[name] = (method === 8 ? inflateRawSync(raw) : raw).toString('utf8');
    at += 46 + nameLen + buf.readUInt16LE(at + 30) + buf.readUInt16LE(at + 32);
  }
  return entries;
}

/** A GraphQL multipart request (an upload) to `url`; resolves with its HTTP status and body. */
async function multipart(url, key, query, text) {
  const form = new FormData();
  form.append('operations', JSON.stringify({ query, variables: { f: null } }));
  form.append('map', JSON.stringify({ 0: ['variables.f'] }));
  form.append('0', new Blob([text], { type: 'text/plain' }), 'harbour.txt');
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: form });
  return { status: res.status, body: await res.text() };
}

export default {
  name: 'file',
  subgraph: 'file',

  async run(ctx) {
    const { gql, files, key, kind, endpoint } = ctx;
    if (kind === 'router') {
      // Why the upload goes to the file service: Hive Router does not carry it.
      ctx.state.routerMultipart = await multipart(endpoint.http, key, IMPORT_MULTIPART, MANUSCRIPT);
    }

    // Upload: the manuscript into a new novel, then the IMPORT job through the gateway.
    const imported = await importFile(files, key, { name: 'harbour.txt', title: 'Harbour' }, MANUSCRIPT);
    assert.equal(imported.status, 202, JSON.stringify(imported));
    const importJob = await finished(gql, imported.body.job.id);
    const novelId = imported.body.novel.id;
    const novel = data(await gql(NOVEL, { n: novelId }), 'novel').novel;

    // Export: TXT and EPUB through the gateway, each downloaded from the file service.
    const exported = {};
    const books = {};
    for (const format of ['TXT', 'EPUB']) {
      const queued = data(await gql(EXPORT, { i: { novelId, format } }), `exportNovel ${format}`).exportNovel.job;
      const job = await finished(gql, queued.id);
      const got = await download(files, job.file.downloadUrl);
      books[format] = got.bytes;
      exported[format] = {
        queued,
        job: { ...job, file: withoutUrl(job.file) },
        download: { status: got.status, contentType: got.contentType, size: got.bytes.length },
      };
      ctx.state[`downloadUrl${format}`] = job.file.downloadUrl;
    }
    const txt = books.TXT.toString('utf8');
    const epub = unzip(books.EPUB);
    const epubText = Object.values(epub).join('\n');
    const forged = await download(files, ctx.state.downloadUrlTXT.replace(/token=.*/, 'token=forged'));

    const listed = data(await gql(FILES, { n: novelId }), 'files').files.edges.map((e) => e.node);
    const manuscript = listed.find((f) => f.name === 'harbour.txt');
    const deleted = data(await gql(DELETE, { i: { fileId: manuscript.id } }), 'deleteFile').deleteFile;
    const afterDelete = data(await gql(FILES, { n: novelId }), 'files after deleteFile').files.edges.map((e) => e.node.name);

    return {
      imported: { status: imported.status, job: imported.body.job, novel: imported.body.novel },
      importJob: { ...importJob, file: withoutUrl(importJob.file) },
      novel,
      exported,
      book: {
        txtHasTitles: TITLES.every((t) => txt.includes(t)),
        txtHasText: txt.includes('Rain fell on the harbour roofs') && txt.includes('船终于出发了'),
        epubHasMimetype: epub.mimetype === 'application/epub+zip',
        epubHasTitles: TITLES.every((t) => epubText.includes(t)),
        epubHasText: epubText.includes('船终于出发了'),
      },
      listed: listed.map(({ id, ...f }) => f),
      deleted: deleted.file.name,
      afterDelete,
      refused: {
        forgedToken: forged.status,
        noCredential: (await importFile(files, null, { name: 'a.txt' }, 'x')).status,
        badFormat: (await importFile(files, key, { name: 'a.txt', format: 'PDF' }, 'x')).body.errors?.[0]?.extensions?.field ?? null,
        missingNovel: failure(await gql(EXPORT, { i: { novelId: missingId('Novel'), format: 'TXT' } })),
      },
    };
  },

  verify(t, ctx) {
    if (ctx.kind === 'router') {
      assert.equal(ctx.state.routerMultipart.status, 415, `Hive Router and GraphQL multipart: ${JSON.stringify(ctx.state.routerMultipart)}`);
      assert.match(ctx.state.routerMultipart.body, /UNSUPPORTED_CONTENT_TYPE/);
    }
    assert.equal(t.imported.status, 202);
    assert.equal(t.imported.job.kind, 'IMPORT');
    assert.equal(t.imported.novel.title, 'Harbour');
    assert.equal(t.importJob.status, 'SUCCEEDED', JSON.stringify(t.importJob));
    assert.deepEqual(t.importJob.progress, { done: 2, total: 2 });
    assert.equal(t.importJob.file.name, 'harbour.txt', 'GenerationJob.file is the manuscript');
    assert.equal(t.importJob.file.size, Buffer.byteLength(MANUSCRIPT));
    const chapters = t.novel.chapters.edges.map((e) => e.node);
    assert.deepEqual(
      chapters.map((c) => [c.seq, c.title]),
      [
        [1, 'Chapter 1 The Harbour'],
        [2, '第二章 灯塔'],
      ],
      JSON.stringify(chapters),
    );
    assert.ok(chapters[1].content.includes('船终于出发了'), JSON.stringify(chapters[1]));

    for (const format of ['TXT', 'EPUB']) {
      const e = t.exported[format];
      assert.equal(e.queued.kind, 'EXPORT');
      assert.equal(e.job.status, 'SUCCEEDED', JSON.stringify(e.job));
      assert.equal(e.download.status, 200);
      assert.equal(e.download.size, e.job.file.size, `${format}: the download is the stored file`);
    }
    assert.match(t.exported.TXT.download.contentType, /^text\/plain/);
    assert.equal(t.exported.EPUB.download.contentType, 'application/epub+zip');
    assert.deepEqual(t.book, { txtHasTitles: true, txtHasText: true, epubHasMimetype: true, epubHasTitles: true, epubHasText: true });

    assert.equal(t.listed.length, 3, JSON.stringify(t.listed));
    assert.deepEqual(t.listed.map((f) => f.name).sort(), [...new Set(t.listed.map((f) => f.name))].sort());
    assert.equal(t.deleted, 'harbour.txt');
    assert.equal(t.afterDelete.length, 2);
    assert.ok(!t.afterDelete.includes('harbour.txt'));

    assert.equal(t.refused.forgedToken, 403);
    assert.equal(t.refused.noCredential, 401);
    assert.equal(t.refused.badFormat, 'format');
    assert.equal(t.refused.missingNovel.errors[0]?.code, 'NOT_FOUND', JSON.stringify(t.refused.missingNovel));
  },
};
