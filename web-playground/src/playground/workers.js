// Monaco's web workers (the editor's own, JSON for variables and results, GraphQL for
// completion and validation) come from this server, bundled separately by build.mjs, which
// defines their URLs (hashed file names) as __ZN_WORKERS__. Monaco asks for a worker by label.

/* global __ZN_WORKERS__ */
const urls = __ZN_WORKERS__;

globalThis.MonacoEnvironment = {
  getWorker(_moduleId, label) {
    const url = urls[label] ?? urls.editor;
    return new Worker(url, { name: `monaco-${label}` });
  },
};
