// Every GraphQL document the writing room sends. The ones that touch optional features
// are built from the detected feature set (features.js).

const RECALL_HIT = 'text score kind chapterSeq startOffset endOffset chapter { id seq title }';
const ISSUE = `kind severity message span { start end text } suggestion source evidence { ${RECALL_HIT} }`;

const CHAPTER_FIELDS = 'id seq title outline status wordCount targetWordCount version volumeId';

export const NOVELS = /* GraphQL */ `
  query Novels($after: String) {
    novels(first: 100, after: $after) {
      pageInfo { hasNextPage endCursor }
      edges { node { id title language genre status wordCount } }
    }
  }
`;

/** The novel with its volumes and a page of its chapters. */
export const outline = (f) => /* GraphQL */ `
  query NovelOutline($id: ID!, $after: String) {
    novel(id: $id) {
      id title language genre status wordCount
      ${f.memoryProgress ? 'memoryProgress { indexedChapters pendingChapters failedChapters }' : ''}
      volumes(first: 100) { edges { node { id seq title summary } } }
      chapters(first: 100, after: $after) {
        pageInfo { hasNextPage endCursor }
        edges { node { ${CHAPTER_FIELDS} } }
      }
    }
  }
`;

/** One chapter with its content (and its continuity report when the API has one). */
export const chapter = (f) => /* GraphQL */ `
  query Chapter($id: ID!) {
    chapter(id: $id) {
      ${CHAPTER_FIELDS} content
      ${f.validation ? `validation { complete issues { ${ISSUE} } }` : ''}
    }
  }
`;

export const REVISIONS = /* GraphQL */ `
  query Revisions($id: ID!) {
    chapter(id: $id) {
      id version
      revisions(first: 100) { edges { node { id version source wordCount note jobId createdAt } } }
    }
  }
`;

export const REVISION = /* GraphQL */ `
  query Revision($id: ID!) { revision(id: $id) { id version content } }
`;

export const JOBS = /* GraphQL */ `
  query Jobs($novelId: ID!) {
    generationJobs(novelId: $novelId, first: 100) {
      edges { node { id chapterId kind status targetWords queuedAt } }
    }
  }
`;

/** A job's outcome and timing (and what the model was given, when the API says). */
export const job = (f) => /* GraphQL */ `
  query Job($id: ID!) {
    generationJob(id: $id) {
      id chapterId kind status targetWords model provider fallbackUsed
      promptTokens completionTokens timeToFirstTokenMs durationMs error queuedAt
      ${f.context ? `context { ${RECALL_HIT} }` : ''}
    }
  }
`;

/**
 * The story bible: every entity, with its state as of chapter `$seq` — or, on a server
 * without `Entity.stateAt`, its recorded states (smaller pages: the query's complexity is
 * entities × states).
 */
export const entities = (f) => /* GraphQL */ `
  query Entities($novelId: ID!, $after: String${f.stateAt ? ', $seq: Int!' : ''}) {
    entities(novelId: $novelId, first: ${f.stateAt ? 100 : 25}, after: $after) {
      pageInfo { hasNextPage endCursor }
      edges {
        node {
          id name kind aliases description currentState importance firstChapterSeq lastChapterSeq
          ${
            f.stateAt
              ? 'stateAt(chapterSeq: $seq) { state storyTime chapterId }'
              : 'states(first: 25) { edges { node { state storyTime chapterId createdAt } } }'
          }
        }
      }
    }
  }
`;

export const CREATE_NOVEL = /* GraphQL */ `
  mutation CreateNovel($input: CreateNovelInput!) {
    createNovel(input: $input) { novel { id title language genre status wordCount } }
  }
`;

export const CREATE_VOLUME = /* GraphQL */ `
  mutation CreateVolume($input: CreateVolumeInput!) {
    createVolume(input: $input) { volume { id seq title summary } }
  }
`;

export const CREATE_CHAPTER = /* GraphQL */ `
  mutation CreateChapter($input: CreateChapterInput!) {
    createChapter(input: $input) { chapter { ${CHAPTER_FIELDS} } }
  }
`;

export const CREATE_ENTITY = /* GraphQL */ `
  mutation CreateEntity($input: CreateEntityInput!) {
    createEntity(input: $input) { entity { id } }
  }
`;

export const RECORD_STATE = /* GraphQL */ `
  mutation RecordEntityState($input: RecordEntityStateInput!) {
    recordEntityState(input: $input) { entityState { id } }
  }
`;

export const GENERATE = /* GraphQL */ `
  mutation GenerateChapter($input: GenerateChapterInput!) {
    generateChapter(input: $input) { job { id chapterId kind status targetWords queuedAt } }
  }
`;

export const CANCEL = /* GraphQL */ `
  mutation CancelGeneration($input: CancelGenerationInput!) {
    cancelGeneration(input: $input) { job { id status } }
  }
`;

export const ROLLBACK = /* GraphQL */ `
  mutation RollbackChapter($input: RollbackChapterInput!) {
    rollbackChapter(input: $input) { chapter { ${CHAPTER_FIELDS} content } }
  }
`;

/** The chapter as it is written (continuity issues too, when the API streams them). */
export const stream = (f) => /* GraphQL */ `
  subscription ChapterStream($jobId: ID!, $after: Int) {
    chapterStream(jobId: $jobId, after: $after) {
      __typename
      ... on ChapterChunk { seq text }
      ... on ChapterCompleted {
        seq
        chapter { ${CHAPTER_FIELDS} content }
        job { id status model completionTokens timeToFirstTokenMs durationMs }
      }
      ... on ChapterFailed { seq status message }
      ${f.streamIssues ? `... on ChapterIssue { seq issue { ${ISSUE} } }` : ''}
    }
  }
`;

export const JOB_EVENTS = /* GraphQL */ `
  subscription JobEvents($novelId: ID!) {
    jobEvents(novelId: $novelId) { status job { id chapterId kind status } }
  }
`;
