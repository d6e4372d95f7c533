//! The ONE place domain errors become GraphQL errors (placeholder).
use znovel_domain::Error;
/// Maps a domain error to a GraphQL error with a stable `extensions.code`.
pub fn to_gql(e: Error) -> async_graphql::Error {
    async_graphql::Error::new(e.to_string())
}
