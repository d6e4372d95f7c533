// The guided first session: each step is an operation that opens in its own tab, with
// variables filled from what earlier steps returned (the novel, chapter and job ids).

/** The ids a step's result hands to the next steps, found in a response's `data`. */
export function idsIn(data) {
  const found = {};
  const novel = data?.createNovel?.novel?.id;
  const chapter = data?.createChapter?.chapter?.id;
  const job = data?.generateChapter?.job?.id;
  if (novel) found.novelId = novel;
  if (chapter) found.chapterId = chapter;
  if (job) found.jobId = job;
  return found;
}

const missing = (what, step) => `<${what}: run step ${step} first>`;

/** The steps, in order. `variables(ids)` builds the variables from the ids seen so far. */
export const STEPS = [
  {
    title: 'Who am I?',
    text: 'Every request carries your API key. Run this to see whose key it is.',
    query: `# Step 1 — the key's user, tenant and role. Run it with Ctrl-Enter (⌘-Enter).
query Viewer {
  viewer {
    role
    user { displayName email }
    tenant { name slug quota { maxNovels maxChaptersPerNovel } }
  }
}
`,
    variables: () => null,
  },
  {
    title: 'Create a novel',
    text: 'A novel holds volumes, chapters and its story bible. Its id is remembered for the next steps.',
    query: `# Step 2 — a new novel; its id is remembered for the next steps.
mutation CreateNovel($input: CreateNovelInput!) {
  createNovel(input: $input) {
    novel { id title genre language status }
  }
}
`,
    variables: () => ({
      input: {
        title: 'The Lighthouse Keeper',
        genre: 'mystery',
        language: 'en',
        description: 'A keeper, a storm, a stranger on the rocks.',
      },
    }),
  },
  {
    title: 'Add a chapter',
    text: 'A chapter with an outline and a target length: the model writes from the outline.',
    query: `# Step 3 — the novel's first chapter, with an outline to write from.
mutation CreateChapter($input: CreateChapterInput!) {
  createChapter(input: $input) {
    chapter { id seq title outline targetWordCount status }
  }
}
`,
    variables: (ids) => ({
      input: {
        novelId: ids.novelId ?? missing('novel id', 2),
        seq: 1,
        title: 'The Storm',
        outline: 'Mara finds a stranger on the rocks below the lighthouse, holding a sealed letter.',
        targetWordCount: 300,
      },
    }),
  },
  {
    title: 'Generate it',
    text: 'generateChapter queues a job and answers at once; a worker writes the chapter with the language model.',
    query: `# Step 4 — queue the generation; the answer comes at once, the writing follows.
mutation GenerateChapter($input: GenerateChapterInput!) {
  generateChapter(input: $input) {
    job { id status kind targetWords queuedAt }
  }
}
`,
    variables: (ids) => ({
      input: {
        chapterId: ids.chapterId ?? missing('chapter id', 3),
        kind: 'DRAFT',
        targetWords: 300,
      },
    }),
  },
  {
    title: 'Watch it being written',
    text: 'A subscription over WebSocket: chunks arrive as the model writes them, then the stored chapter. Reconnect with after: <last seq> to resume.',
    query: `# Step 5 — follow the job live (graphql-transport-ws). The result pane shows the
# latest event: chunks, then the stored chapter with the job's timing.
subscription ChapterStream($jobId: ID!, $after: Int) {
  chapterStream(jobId: $jobId, after: $after) {
    __typename
    ... on ChapterChunk { seq text }
    ... on ChapterCompleted {
      seq
      chapter { id version wordCount content }
      job { status model timeToFirstTokenMs durationMs completionTokens }
    }
    ... on ChapterFailed { seq status message }
  }
}
`,
    variables: (ids) => ({ jobId: ids.jobId ?? missing('job id', 4), after: 0 }),
  },
  {
    title: 'Read the chapter and its revisions',
    text: 'Every content change is a revision; rollbackChapter brings an older one back.',
    query: `# Step 6 — the stored chapter and its revision history.
query Chapter($id: ID!) {
  chapter(id: $id) {
    title status version wordCount content
    revisions(first: 10) {
      edges { node { id version source wordCount createdAt } }
    }
  }
}
`,
    variables: (ids) => ({ id: ids.chapterId ?? missing('chapter id', 3) }),
  },
  {
    title: 'Follow every job of the novel',
    text: 'jobEvents reports each job of the novel as it is queued, runs and ends — from any process.',
    query: `# Step 7 — job lifecycle events for the whole novel; run step 4 again to see them.
subscription JobEvents($novelId: ID!) {
  jobEvents(novelId: $novelId) {
    status
    job { id kind chapterId model }
  }
}
`,
    variables: (ids) => ({ novelId: ids.novelId ?? missing('novel id', 2) }),
  },
];

/** The tab a first visit opens with. */
export const WELCOME_TAB = {
  query: `# Welcome to the Z-Novel playground.
#
# The Guide (left) walks through a first session: create a novel and a chapter,
# generate the chapter, and watch it being written live. The Explorer builds
# operations by clicking; the Docs list every type and field.
#
# Run an operation with Ctrl-Enter (⌘-Enter on a Mac).
${STEPS[0].query.split('\n').slice(1).join('\n')}`,
};
