// What this server's schema offers beyond the basics, found by introspection when the page
// loads: the panels for story memory and continuity checks appear only where the API has
// them, so the page works against an older or a newer server alike.

import { gql } from '../shared/api.js';

const QUERY = /* GraphQL */ `
  query WritingRoomFeatures {
    job: __type(name: "GenerationJob") { fields { name } }
    chapter: __type(name: "Chapter") { fields { name } }
    entity: __type(name: "Entity") { fields { name } }
    novel: __type(name: "Novel") { fields { name } }
    stream: __type(name: "ChapterStreamEvent") { possibleTypes { name } }
  }
`;

const has = (type, field) => Boolean(type?.fields?.some((f) => f.name === field));

/**
 * `{ context, validation, stateAt, memoryProgress, streamIssues }`: whether
 * `GenerationJob.context`, `Chapter.validation`, `Entity.stateAt`, `Novel.memoryProgress`
 * and the `ChapterIssue` stream event exist.
 */
export async function detectFeatures() {
  const d = await gql(QUERY);
  return {
    context: has(d.job, 'context'),
    validation: has(d.chapter, 'validation'),
    stateAt: has(d.entity, 'stateAt'),
    memoryProgress: has(d.novel, 'memoryProgress'),
    streamIssues: Boolean(d.stream?.possibleTypes?.some((t) => t.name === 'ChapterIssue')),
  };
}
