// Hive Gateway configuration for the Z-Novel supergraph: the second federation router the
// end-to-end suite runs (the first is Hive Router, the production gateway, with
// k8s/base/gateway's configuration). Run with:
//
//   npx hive-gateway supergraph supergraph.graphql -c gateway.config.mjs --port 4000
//
// - Clients: GraphQL over HTTP and graphql-transport-ws on /graphql; credentials in the
//   `Authorization` or `X-Api-Key` header (HTTP) or in the `connection_init` payload
//   (WebSocket, the same two names).
// - To subgraphs: queries and mutations over HTTP with `Authorization` / `X-Api-Key`
//   propagated; subscriptions over WebSocket (graphql-transport-ws; not HTTP multipart,
//   which async-graphql streams one event late) with `Authorization` in `connection_init`.

import { defineConfig } from '@graphql-hive/gateway';

/**
 * The client's credential as an `Authorization` value, whether it came in a header or in
 * `connection_init` (as `Authorization`, or as `X-Api-Key`, which becomes a bearer key).
 */
function credential(context) {
  const params = context?.connectionParams;
  if (params && typeof params === 'object') {
    const named = (wanted) =>
      Object.entries(params).find(([name, value]) => name.toLowerCase() === wanted && typeof value === 'string')?.[1];
    const authorization = named('authorization');
    if (authorization) return authorization;
    const apiKey = named('x-api-key');
    if (apiKey) return `Bearer ${apiKey}`;
  }
  return context?.headers?.authorization;
}

/** Makes `context.headers.authorization` the client's credential for every transport. */
const credentialFromConnectionParams = {
  onContextBuilding({ context, extendContext }) {
    const auth = credential(context);
    if (auth && context.headers?.authorization !== auth) {
      extendContext({ headers: { ...context.headers, authorization: auth } });
    }
  },
};

export const gatewayConfig = defineConfig({
  transportEntries: {
    '*.http': {
      options: {
        subscriptions: {
          kind: 'ws',
          options: {
            connectionParams: { Authorization: '{context.headers.authorization}' },
          },
        },
      },
    },
  },
  propagateHeaders: {
    fromClientToSubgraphs: ({ request, context }) => ({
      authorization: request?.headers.get('authorization') ?? credential(context),
      'x-api-key': request?.headers.get('x-api-key'),
      'x-request-id': request?.headers.get('x-request-id'),
    }),
  },
  plugins: () => [credentialFromConnectionParams],
  // Subgraph errors (with their `extensions.code`) reach the client as the subgraph sent them.
  maskedErrors: false,
});
