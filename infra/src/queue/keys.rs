//! Redis key layout. Everything lives under the deployment prefix:
//!
//! | key                                       | type   | holds                           |
//! |-------------------------------------------|--------|---------------------------------|
//! | `{prefix}:jobs`                           | stream | queued jobs, consumer group [`GROUP`] |
//! | `{prefix}:jobs:dead`                      | stream | dead letters                    |
//! | `{prefix}:t:{tenant}:job:{job}:tokens`    | stream | one job's token stream (entry id `{seq}-0`) |
//! | `{prefix}:jobevents`                      | pub/sub channel | job status changes (JSON), every tenant |
//! | `{prefix}:credentials`                    | pub/sub channel | revoked keys, role changes (JSON), every tenant |
//! | `{prefix}:rl:{bucket}`                    | string | a rate limit's GCRA state (µs), expires when full |
//!
//! The token stream's name is also the pub/sub channel its appends are announced on.
//! Queue entries carry their tenant as a field; token streams are under their tenant.

use znovel_domain::ids::{JobId, TenantId};

/// The key prefix used when none is configured.
pub const DEFAULT_PREFIX: &str = "znovel";

/// The consumer group every worker joins.
pub(crate) const GROUP: &str = "workers";

/// The job stream.
pub(crate) fn jobs(prefix: &str) -> String {
    format!("{prefix}:jobs")
}

/// The dead-letter stream.
pub(crate) fn dead(prefix: &str) -> String {
    format!("{prefix}:jobs:dead")
}

/// One job's token stream (and its announcement channel).
pub(crate) fn tokens(prefix: &str, tenant: TenantId, job: JobId) -> String {
    format!("{prefix}:t:{tenant}:job:{job}:tokens")
}

/// The pub/sub channel of job status changes.
pub(crate) fn job_events(prefix: &str) -> String {
    format!("{prefix}:jobevents")
}

/// The pub/sub channel of credential changes.
pub(crate) fn credentials(prefix: &str) -> String {
    format!("{prefix}:credentials")
}

/// Checks a configured prefix: not empty, no whitespace, no `*?[]` (it is used in
/// patterns by operators' tooling and tests).
pub(crate) fn check_prefix(prefix: &str) -> anyhow::Result<()> {
    if prefix.is_empty()
        || prefix
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '*' | '?' | '[' | ']'))
    {
        anyhow::bail!("invalid Redis key prefix {prefix:?}: empty, or has whitespace or *?[]");
    }
    Ok(())
}
