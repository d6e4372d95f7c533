// The end-to-end checks, in the order a session runs them (later ones use what earlier
// ones created: the novel, its chapter and job, the character, the viewer). Each check
// is `{ name, subgraph, run(ctx), verify(transcript, ctx) }`: `run` talks to the endpoint
// like a client and returns its part of the transcript (compared across deployments),
// `verify` asserts what that part must show on every deployment.
//
// Every subgraph the binary knows (`znovel print-schema --list-subgraphs`) must have a
// check naming it: the suite fails for a subgraph without one. A new subgraph gets
// `checks/<name>.mjs` exercising its operations through the router, listed here.

import admin from './admin.mjs';
import auth from './auth.mjs';
import file from './file.mjs';
import memory from './memory.mjs';
import ragRetrieval from './rag-retrieval.mjs';
import storyGen from './story-gen.mjs';
import transports from './transports.mjs';
import validator from './validator.mjs';

export const CHECKS = [storyGen, memory, ragRetrieval, validator, file, admin, auth, transports];

/** The subgraphs of `subgraphs` that no check covers. */
export function uncovered(subgraphs) {
  const covered = new Set(CHECKS.map((c) => c.subgraph).filter(Boolean));
  return subgraphs.filter((s) => !covered.has(s));
}
