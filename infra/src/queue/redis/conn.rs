//! Connections to Redis: a `bb8-redis` pool for short commands, and dedicated
//! connections for commands that block server-side (`XREADGROUP ... BLOCK`), so a blocked
//! claimer never holds a pooled connection that appends and acks need.
//!
//! Pooled connections are multiplexed connections with the redis crate's default 500 ms
//! response timeout; one that fails with an I/O error is marked broken and not reused (so
//! the pool needs no `PING` per checkout). Blocking connections have no response timeout
//! (the caller bounds the wait), at most [`RedisOptions::max_blocking`] are open at once,
//! and one whose command did not complete (timed out, cancelled, failed) is closed rather
//! than reused, so a late reply can never be read by the next command.

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError, RedisResult};
use bb8_redis::RedisConnectionManager;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};
use znovel_domain::ports::QueueError;

/// Pool settings of [`RedisConnections::connect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// Most pooled connections (short commands; each is multiplexed but checked out by
    /// one caller at a time).
    pub pool_size: u32,
    /// Most connections blocked server-side at once (queue claimers waiting for jobs).
    /// A claimer that finds none free within its `wait` returns empty-handed.
    pub max_blocking: usize,
    /// How long to wait to open a connection or get one from the pool.
    pub connect_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            max_blocking: 64,
            connect_timeout: Duration::from_secs(2),
        }
    }
}

/// The Redis connections of one process, shared by [`super::RedisQueue`] and
/// [`super::RedisTokenStreams`] (cheap to clone).
#[derive(Clone)]
pub struct RedisConnections {
    pool: bb8::Pool<Manager>,
    blocking: std::sync::Arc<Blocking>,
}

impl std::fmt::Debug for RedisConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnections")
            .field("pool", &self.pool.state())
            .finish_non_exhaustive()
    }
}

impl RedisConnections {
    /// Opens the pool on `url` (`redis://[:password@]host:port[/db]`) and checks that
    /// Redis answers.
    pub async fn connect(url: &str, options: RedisOptions) -> anyhow::Result<Self> {
        let client = Client::open(url)?;
        let pool = bb8::Pool::builder()
            .max_size(options.pool_size.max(1))
            .connection_timeout(options.connect_timeout)
            .test_on_check_out(false)
            .build(Manager(RedisConnectionManager::new(url)?))
            .await?;
        let conns = Self {
            pool,
            blocking: std::sync::Arc::new(Blocking {
                client,
                idle: Mutex::new(Vec::new()),
                permits: Semaphore::new(options.max_blocking.max(1)),
                connect_timeout: options.connect_timeout,
            }),
        };
        {
            let mut conn = conns.get().await?;
            let pong: RedisResult<String> = ::redis::cmd("PING").query_async(&mut conn.inner).await;
            conn.check(pong)?;
        }
        Ok(conns)
    }

    /// Pool gauges (connections open / idle), for metrics.
    pub fn pool_state(&self) -> bb8::State {
        self.pool.state()
    }

    /// A pooled connection.
    pub(crate) async fn get(&self) -> Result<bb8::PooledConnection<'_, Manager>, QueueError> {
        self.pool.get().await.map_err(|e| match e {
            bb8::RunError::TimedOut => {
                QueueError::Unavailable("timed out waiting for a Redis connection".into())
            }
            bb8::RunError::User(e) => redis_err(&e),
        })
    }

    /// A connection for a blocking command, or `None` when none frees up within `within`.
    pub(crate) async fn blocking(
        &self,
        within: Duration,
    ) -> Result<Option<BlockingConn<'_>>, QueueError> {
        let owner = &*self.blocking;
        let Ok(Ok(permit)) = tokio::time::timeout(within, owner.permits.acquire()).await else {
            return Ok(None);
        };
        let idle = owner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let (conn, id) = match idle {
            Some(found) => found,
            None => owner.open().await?,
        };
        Ok(Some(BlockingConn {
            owner,
            conn: Some(conn),
            id,
            _permit: permit,
        }))
    }

    /// The client, for connections of other kinds (pub/sub).
    pub(crate) fn client(&self) -> &Client {
        &self.blocking.client
    }
}

/// The bb8 manager: `bb8-redis`'s, plus a "broken" mark set when a command failed with
/// an I/O error (its `has_broken` is always false).
pub(crate) struct Manager(RedisConnectionManager);

/// A pooled connection.
pub(crate) struct Conn {
    /// The connection.
    pub(crate) inner: MultiplexedConnection,
    broken: bool,
}

impl Conn {
    /// Passes a command's result through, marking the connection broken on an I/O
    /// error, and translating the error.
    pub(crate) fn check<T>(&mut self, result: RedisResult<T>) -> Result<T, QueueError> {
        result.map_err(|e| {
            self.note(&e);
            redis_err(&e)
        })
    }

    /// Marks the connection broken if `e` says the link is gone.
    pub(crate) fn note(&mut self, e: &RedisError) {
        if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() {
            self.broken = true;
        }
    }
}

impl bb8::ManageConnection for Manager {
    type Connection = Conn;
    type Error = RedisError;

    async fn connect(&self) -> Result<Conn, RedisError> {
        Ok(Conn {
            inner: self.0.connect().await?,
            broken: false,
        })
    }

    async fn is_valid(&self, conn: &mut Conn) -> Result<(), RedisError> {
        self.0.is_valid(&mut conn.inner).await
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.broken
    }
}

/// Dedicated connections for blocking commands.
struct Blocking {
    client: Client,
    idle: Mutex<Vec<(MultiplexedConnection, i64)>>,
    permits: Semaphore,
    connect_timeout: Duration,
}

impl Blocking {
    /// Opens a connection without a response timeout, with its `CLIENT ID`.
    async fn open(&self) -> Result<(MultiplexedConnection, i64), QueueError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(None);
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| redis_err(&e))?;
        let id = tokio::time::timeout(
            self.connect_timeout,
            ::redis::cmd("CLIENT")
                .arg("ID")
                .query_async::<i64>(&mut conn),
        )
        .await
        .map_err(|_| QueueError::Unavailable("Redis did not answer CLIENT ID".into()))?
        .map_err(|e| redis_err(&e))?;
        Ok((conn, id))
    }
}

/// A dedicated connection, closed on drop unless [`BlockingConn::keep`] returns it.
pub(crate) struct BlockingConn<'a> {
    owner: &'a Blocking,
    conn: Option<MultiplexedConnection>,
    id: i64,
    _permit: SemaphorePermit<'a>,
}

impl BlockingConn<'_> {
    /// The connection.
    pub(crate) fn conn(&mut self) -> Option<&mut MultiplexedConnection> {
        self.conn.as_mut()
    }

    /// Its `CLIENT ID` (for `CLIENT UNBLOCK`).
    pub(crate) fn id(&self) -> i64 {
        self.id
    }

    /// Returns the connection for reuse: its last command completed.
    pub(crate) fn keep(mut self) {
        if let Some(conn) = self.conn.take() {
            self.owner
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((conn, self.id));
        }
    }
}

/// Translates a Redis error: the link (refused, dropped, timed out) or a server that
/// cannot serve now → `Unavailable`; anything else → `Internal`.
pub(crate) fn redis_err(e: &RedisError) -> QueueError {
    use ::redis::ServerErrorKind as S;
    let unavailable = e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                S::BusyLoading | S::TryAgain | S::ClusterDown | S::MasterDown | S::ReadOnly
            )
        );
    if unavailable {
        QueueError::Unavailable(format!("redis: {e}"))
    } else {
        QueueError::Internal(format!("redis: {e}"))
    }
}
