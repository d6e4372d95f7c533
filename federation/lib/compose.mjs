// Composition of the Z-Novel subgraphs: each subgraph's federation SDL comes from the
// binary (`znovel print-schema --subgraph <name>`), `composeServices` of
// @theguild/federation-composition composes them into a supergraph, and the supergraph's
// public API schema is compared with the contract `schema.graphql`.

import { execFileSync } from 'node:child_process';
import { buildSchema, lexicographicSortSchema, parse, printSchema } from 'graphql';
import { composeServices, compositionHasErrors } from '@theguild/federation-composition';

/**
 * The subgraphs the binary `bin` knows (`znovel print-schema --list-subgraphs`), named like
 * the services (`znovel serve --role <name>`) that serve them.
 */
export function listSubgraphs(bin) {
  try {
    const out = execFileSync(bin, ['print-schema', '--list-subgraphs'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const names = out.split('\n').map((l) => l.trim()).filter(Boolean);
    if (!names.length) throw new Error('it listed no subgraph');
    return names;
  } catch (e) {
    throw new Error(`cannot list the subgraphs with ${bin} print-schema --list-subgraphs: ${e.stderr || e.message}`);
  }
}

/** The subgraph URLs of the committed supergraph: the Kubernetes Services of k8s/base. */
export const clusterUrl = (name) => `http://${name}:8080/graphql`;

/** Each subgraph's federation SDL, printed by the binary `bin`. */
export function subgraphSdls(bin) {
  return Object.fromEntries(
    listSubgraphs(bin).map((name) => {
      try {
        const sdl = execFileSync(bin, ['print-schema', '--subgraph', name], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        return [name, sdl];
      } catch (e) {
        throw new Error(`cannot print the ${name} subgraph's SDL with ${bin}: ${e.stderr || e.message}`);
      }
    }),
  );
}

/**
 * Composes the subgraphs (`sdls`: name → SDL), each served at `urlOf(name)`.
 * Returns `{ supergraphSdl, publicSdl }`; throws listing every composition error.
 */
export function compose(sdls, urlOf = clusterUrl) {
  const result = composeServices(
    Object.entries(sdls).map(([name, sdl]) => ({ name, url: urlOf(name), typeDefs: parse(sdl) })),
  );
  if (compositionHasErrors(result)) {
    const errors = result.errors.map((e) => `  - ${e.message}`).join('\n');
    throw new Error(`the subgraphs do not compose:\n${errors}`);
  }
  return { supergraphSdl: result.supergraphSdl, publicSdl: result.publicSdl };
}

/** An SDL printed in a canonical form (types and fields sorted, descriptions kept). */
export function normalize(sdl) {
  return printSchema(lexicographicSortSchema(buildSchema(sdl)));
}

/**
 * A short description of where two texts first differ (shown with their `names`), or
 * `null` when they are equal.
 */
export function firstDifference(expected, actual, names = ['expected', 'actual'], context = 3) {
  if (expected === actual) return null;
  const a = expected.split('\n');
  const b = actual.split('\n');
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const from = Math.max(0, i - context);
  const show = (lines, mark) =>
    lines
      .slice(from, i + context + 1)
      .map((l, k) => `${from + k === i ? mark : ' '} ${String(from + k + 1).padStart(5)} | ${l}`)
      .join('\n');
  return `first difference at line ${i + 1}:\n--- ${names[0]}\n${show(a, '-')}\n+++ ${names[1]}\n${show(b, '+')}`;
}
