// The playground: GraphiQL 5 with the Guide and the Explorer, served by the Z-Novel
// binary with everything it needs (no CDN). Queries and mutations go over HTTP, and
// subscriptions over graphql-transport-ws, all with the API key kept in this browser.

import './workers.js';
import { StrictMode, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { explorerPlugin } from '@graphiql/plugin-explorer';
import { getOperationAST, parse } from 'graphql';
import 'monaco-editor/min/vs/editor/editor.main.css';
import 'graphiql/style.css';
import '@graphiql/plugin-explorer/style.css';
import '../shared/base.css';
import './playground.css';
import { iterateRaw, onAuthFailure, postGraphQL, toApiError } from '../shared/api.js';
import { signIn, viewerLabel } from '../shared/key-gate.js';
import { guidePlugin } from './guide.jsx';
import { WELCOME_TAB } from './examples.js';

const explorer = explorerPlugin({ showAttribution: false });

function isSubscription({ query, operationName }) {
  try {
    return getOperationAST(parse(query), operationName ?? undefined)?.operation === 'subscription';
  } catch {
    return false;
  }
}

const asResult = (error) => ({ errors: [{ message: error.message, extensions: { code: error.code } }] });

/** Every result of a subscription over WebSocket; a failure becomes an error result. */
async function* overWebSocket(params) {
  try {
    yield* iterateRaw(params);
  } catch (e) {
    yield asResult(toApiError(e));
  }
}

/** GraphiQL's fetcher: HTTP for queries and mutations, WebSocket for subscriptions. */
function fetcher(params, options) {
  if (isSubscription(params)) return overWebSocket(params);
  return postGraphQL(params, { headers: options?.headers })
    .then((r) => r.body)
    .catch((e) => asResult(e));
}

function Playground({ viewer, onChangeKey }) {
  return (
    <div className="zn-page">
      <header className="zn-top">
        <a className="zn-brand" href="/playground">
          Z-Novel
        </a>
        <nav className="zn-nav" aria-label="Pages">
          <a href="/playground" aria-current="page">
            Playground
          </a>
          <a href="/write">Writing room</a>
        </nav>
        <span className="zn-who" id="who">
          {viewerLabel(viewer)}
        </span>
        <button type="button" id="change-key" onClick={onChangeKey}>
          Change key
        </button>
      </header>
      <main className="zn-graphiql">
        <GraphiQL
          fetcher={fetcher}
          plugins={[guidePlugin, explorer]}
          visiblePlugin={guidePlugin}
          defaultTabs={[WELCOME_TAB]}
          defaultEditorToolsVisibility="variables"
        />
      </main>
    </div>
  );
}

const root = createRoot(document.getElementById('app'));
let asking = false;
let generation = 0;

/** Signs in (asking for a key when needed), then (re)mounts GraphiQL with that key. */
async function start(reason) {
  if (asking) return;
  asking = true;
  const viewer = await signIn(reason);
  asking = false;
  generation += 1;
  root.render(
    <StrictMode>
      <Playground key={generation} viewer={viewer} onChangeKey={() => start('Enter the API key to use from now on.')} />
    </StrictMode>,
  );
}

onAuthFailure((error) => start(error));
start();
