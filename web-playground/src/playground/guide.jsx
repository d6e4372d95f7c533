// The Guide: a GraphiQL plugin listing the steps of a first session. "Open" puts a step's
// operation and variables in a new tab; the ids its results carry (novel, chapter, job)
// are picked from the result pane and fill the variables of the later steps.

import { useEffect, useState } from 'react';
import { useGraphiQL, useGraphiQLActions, pick } from '@graphiql/react';
import { STEPS, idsIn } from './examples.js';

const IDS_STORAGE = 'znovel.guide.ids';

function loadIds() {
  try {
    return JSON.parse(localStorage.getItem(IDS_STORAGE) ?? '{}') ?? {};
  } catch {
    return {};
  }
}

function GuideIcon() {
  return (
    <svg viewBox="0 0 24 24" width="1em" height="1em" fill="none" stroke="currentColor" strokeWidth="1.5" aria-hidden="true">
      <path d="M4 5.5A2.5 2.5 0 0 1 6.5 3H20v15H6.5A2.5 2.5 0 0 0 4 20.5z" />
      <path d="M4 20.5A2.5 2.5 0 0 0 6.5 23H20v-5" />
      <path d="M8 7h8M8 11h6" />
    </svg>
  );
}

function GuideContent() {
  const { queryEditor, variableEditor, responseEditor } = useGraphiQL(
    pick('queryEditor', 'variableEditor', 'responseEditor'),
  );
  const { addTab, setOperationName } = useGraphiQLActions();
  const [ids, setIds] = useState(loadIds);

  // Remember the ids each result hands out.
  useEffect(() => {
    if (!responseEditor) return undefined;
    const model = responseEditor.getModel();
    const sub = responseEditor.onDidChangeModelContent(() => {
      let parsed;
      try {
        parsed = JSON.parse(model.getValue());
      } catch {
        return;
      }
      const found = idsIn(parsed?.data);
      if (Object.keys(found).length === 0) return;
      setIds((old) => {
        const next = { ...old, ...found };
        try {
          localStorage.setItem(IDS_STORAGE, JSON.stringify(next));
        } catch {
          // not kept: fine
        }
        return next;
      });
    });
    return () => sub.dispose();
  }, [responseEditor]);

  const open = (step) => {
    addTab();
    queryEditor?.setValue(step.query);
    const vars = step.variables(ids);
    variableEditor?.setValue(vars ? JSON.stringify(vars, null, 2) : '');
    // GraphiQL re-reads the operation's name a moment after an edit; a run before that
    // would send the previous tab's name.
    const name = step.query.match(/^(?:query|mutation|subscription)\s+(\w+)/m)?.[1];
    if (name) setOperationName(name);
    queryEditor?.focus();
  };

  return (
    <div className="zn-guide">
      <div className="graphiql-doc-explorer-title">Guide</div>
      <p>A first session, one operation per step. Open a step, then run it (Ctrl-Enter).</p>
      <ol>
        {STEPS.map((step, i) => (
          <li key={step.title} data-step={i + 1}>
            <div className="zn-step-head">
              <strong>{step.title}</strong>
              <button type="button" className="zn-open" onClick={() => open(step)} aria-label={`Open step ${i + 1}: ${step.title}`}>
                Open
              </button>
            </div>
            <p>{step.text}</p>
          </li>
        ))}
      </ol>
      <dl className="zn-ids" aria-label="Remembered ids">
        <dt>novel</dt>
        <dd data-id="novelId">{ids.novelId ?? '—'}</dd>
        <dt>chapter</dt>
        <dd data-id="chapterId">{ids.chapterId ?? '—'}</dd>
        <dt>job</dt>
        <dd data-id="jobId">{ids.jobId ?? '—'}</dd>
      </dl>
      <p>
        The <a href="/write">writing room</a> does all of this with buttons.
      </p>
    </div>
  );
}

/** The plugin GraphiQL shows in its sidebar. */
export const guidePlugin = {
  title: 'Guide',
  icon: GuideIcon,
  content: GuideContent,
};
