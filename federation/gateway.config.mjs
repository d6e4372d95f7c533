// Hive Gateway configuration for the Z-Novel supergraph (CI's federation router; in
// Kubernetes the Hive Router of k8s/base/gateway does the same job). Run with:
//
//   npx hive-gateway supergraph supergraph.graphql -c gateway.config.mjs --port 4000
//
// - Clients: GraphQL over HTTP and graphql-transport-ws on /graphql; credentials in the
//   `Authorization` header (HTTP) or in the `connection_init` payload (WebSocket).
// - To subgraphs: queries and mutations over HTTP with `Authorization` / `X-Api-Key`
//   propagated; subscriptions over WebSocket (graphql-transport-ws; not HTTP multipart,
//   which async-graphql streams one event late) with `Authorization` in `connection_init`.

import { defineConfig } from '@graphql-hive/gateway';

/** The client's credential, whether it came in a header or in `connection_init`. */
function credential(context) {
  const params = context?.connectionParams;
  if (params && typeof params === 'object') {
    for (const [name, value] of Object.entries(params)) {
      if (name.toLowerCase() === 'authorization' && typeof value === 'string') return value;
    }
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
