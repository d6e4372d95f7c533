//! Live credentials: a long-lived connection (a WebSocket, an SSE stream) keeps the rights
//! of its credential *now*, not of the moment it connected.
//!
//! Each such connection gets a [`LiveCredential`]: the connection's current standing
//! (valid with an actor, revoked, expired) in a [`watch`] channel that every operation
//! reads — no database round trip per operation. A task per credential (shared by every
//! connection open with it at the moment: a client's many tabs, or a service's many
//! subscribers on one key, cost one task, not one each) keeps it current: it re-checks
//! the credential against the database when a [`CredentialChange`] for its user is
//! announced (by any process: in-process broadcast, or Redis pub/sub with
//! `REDIS_URL`), every [`RECHECK_EVERY`] in case an announcement was lost, and ends it
//! when a JWT's `exp` passes.
//!
//! What ends when: a revoked key (or an expired token, a suspended tenant) closes a
//! WebSocket with 4403 and ends an SSE stream with an `UNAUTHENTICATED` error; a role
//! change ends the connection's running subscriptions with a `FORBIDDEN` error (subscribe
//! again to continue with the new role) and every later operation runs with the new role.

use crate::auth::Authenticator;
use crate::graphql::errors::{error_response, to_gql};
use async_graphql::futures_util::stream::{BoxStream, StreamExt};
use async_graphql::{Data, Executor, Request, Response};
use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;
use tokio::sync::watch;
use znovel_domain::Error;
use znovel_domain::auth::Actor;
use znovel_domain::ports::{CredentialChange, CredentialEvents};

/// How often a connection's credential is re-checked without an announcement (a lost
/// pub/sub message is caught up within this time).
pub const RECHECK_EVERY: Duration = Duration::from_secs(30);

/// Where a connection's credential stands.
#[derive(Debug, Clone)]
pub enum Standing {
    /// Valid; operations act as this actor.
    Valid(Actor),
    /// Revoked, or its user or tenant is gone: the connection ends.
    Revoked,
    /// A token past its `exp`: the connection ends.
    Expired,
}

/// Starts the watch over connections' credentials; one per process.
#[derive(Clone)]
pub struct LiveCredentials {
    auth: Authenticator,
    events: Arc<dyn CredentialEvents>,
    /// The watch of each credential some connection holds, by credential.
    watched: Arc<Mutex<WatchIndex>>,
}

/// One credential's standing and the task keeping it current (ended when the last
/// connection holding it lets go).
struct Watched {
    rx: watch::Receiver<Standing>,
    task: tokio::task::JoinHandle<()>,
    credential: String,
    index: Weak<Mutex<WatchIndex>>,
}

/// The running watches, by credential.
type WatchIndex = HashMap<String, Weak<Watched>>;

impl Drop for Watched {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(index) = self.index.upgrade() {
            let mut index = index.lock().unwrap_or_else(PoisonError::into_inner);
            // Unless a newer watch of the same credential has taken the entry.
            if index
                .get(&self.credential)
                .is_some_and(|w| w.strong_count() == 0)
            {
                index.remove(&self.credential);
            }
        }
    }
}

impl LiveCredentials {
    /// Watches credentials with `auth`, hearing changes on `events`. Also starts the
    /// process-wide task that empties the authentication cache whenever any change is
    /// announced, so plain HTTP requests see the change at once too.
    pub fn new(auth: Authenticator, events: Arc<dyn CredentialEvents>) -> Self {
        let admin = auth.admin().clone();
        let mut all = events.subscribe();
        tokio::spawn(async move {
            while all.next().await.is_some() {
                admin.forget_cached();
            }
        });
        Self {
            auth,
            events,
            watched: Arc::default(),
        }
    }

    /// Authenticates `credential` and keeps watching it for as long as the returned
    /// handle (or a clone) lives.
    ///
    /// Connections with the same credential share its watch while it is running and
    /// agrees with this authentication (same actor); otherwise this one starts a new one.
    pub async fn watch(&self, credential: &str) -> Result<LiveCredential, Error> {
        // Subscribed before the check, so a change right after it is not missed.
        let changes = self.events.subscribe();
        let (actor, exp) = self.auth.authenticate_until(credential, false).await?;
        let running = self
            .watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(credential)
            .and_then(Weak::upgrade);
        // (The lock is released first: a watch dropped here removes its own entry.)
        let running = running.filter(|w| {
            !w.task.is_finished()
                && matches!(&*w.rx.borrow(), Standing::Valid(current) if *current == actor)
        });
        let shared = match running {
            Some(w) => w,
            None => {
                let (tx, rx) = watch::channel(Standing::Valid(actor.clone()));
                let task = tokio::spawn(keep_current(
                    self.auth.clone(),
                    credential.to_owned(),
                    changes,
                    tx,
                    actor,
                    exp,
                ));
                let w = Arc::new(Watched {
                    rx,
                    task,
                    credential: credential.to_owned(),
                    index: Arc::downgrade(&self.watched),
                });
                self.watched
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(credential.to_owned(), Arc::downgrade(&w));
                w
            }
        };
        Ok(LiveCredential {
            rx: shared.rx.clone(),
            exp,
            _watched: shared,
        })
    }
}

/// One connection's credential, kept current. Cheap to clone and to read.
#[derive(Clone)]
pub struct LiveCredential {
    rx: watch::Receiver<Standing>,
    exp: Option<i64>,
    _watched: Arc<Watched>,
}

impl LiveCredential {
    /// The actor operations act as now; `Unauthenticated` once the credential is revoked
    /// or expired.
    pub fn current(&self) -> Result<Actor, Error> {
        if self
            .exp
            .is_some_and(|exp| exp < chrono::Utc::now().timestamp())
        {
            return Err(Error::Unauthenticated);
        }
        match &*self.rx.borrow() {
            Standing::Valid(actor) => Ok(actor.clone()),
            Standing::Revoked | Standing::Expired => Err(Error::Unauthenticated),
        }
    }

    /// Resolves when the credential stops being valid (revoked or expired).
    pub async fn ended(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|s| !matches!(s, Standing::Valid(_))).await;
    }

    /// Resolves at the first change after this call — a new role or the end — with the
    /// error that ends a subscription started before it.
    pub async fn changed(&self) -> async_graphql::Error {
        let mut rx = self.rx.clone();
        rx.mark_unchanged();
        if rx.changed().await.is_err() {
            return to_gql(Error::Unauthenticated);
        }
        let standing = rx.borrow().clone();
        match standing {
            Standing::Valid(actor) => to_gql(Error::Forbidden(format!(
                "your role changed to {}; subscribe again to continue with it",
                actor.role
            ))),
            Standing::Revoked | Standing::Expired => to_gql(Error::Unauthenticated),
        }
    }
}

/// Keeps `tx` current until the credential ends or nobody holds the receiver any more.
async fn keep_current(
    auth: Authenticator,
    credential: String,
    mut changes: BoxStream<'static, CredentialChange>,
    tx: watch::Sender<Standing>,
    mut actor: Actor,
    exp: Option<i64>,
) {
    let expiry = async {
        match exp {
            Some(exp) => {
                let left = exp.saturating_sub(chrono::Utc::now().timestamp()).max(0);
                tokio::time::sleep(Duration::from_secs(left.unsigned_abs())).await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expiry);
    let mut tick = tokio::time::interval(RECHECK_EVERY);
    tick.reset();
    let mut listening = true;
    loop {
        let fresh = tokio::select! {
            change = changes.next(), if listening => match change {
                Some(c) if c.tenant_id == actor.tenant_id && c.user_id == actor.user_id => true,
                Some(_) => continue,
                None => {
                    listening = false;
                    continue;
                }
            },
            _ = tick.tick() => false,
            () = &mut expiry => {
                let _ = tx.send(Standing::Expired);
                return;
            }
            () = tx.closed() => return,
        };
        match auth.authenticate_until(&credential, fresh).await {
            Ok((now, _)) => {
                if now.role != actor.role {
                    tracing::info!(user = %now.user_id, role = %now.role, "a connection's role changed");
                    actor = now;
                    let _ = tx.send(Standing::Valid(actor.clone()));
                }
            }
            Err(Error::Unauthenticated) => {
                tracing::info!(user = %actor.user_id, "a connection's credential was revoked");
                let _ = tx.send(Standing::Revoked);
                return;
            }
            // The database is unreachable: keep the standing, try again at the next tick.
            Err(e) => tracing::warn!(error = %e, "cannot re-check a connection's credential"),
        }
    }
}

/// Wraps an executor so that every subscription of a connection with a
/// [`LiveCredential`] (in the connection's or the request's data) ends, with an error
/// saying why, when the credential is revoked or its role changes. An operation started
/// after the credential ended is refused before it runs.
#[derive(Clone)]
pub struct LiveExecutor<E> {
    inner: E,
}

impl<E> LiveExecutor<E> {
    /// Wraps `inner`.
    pub fn new(inner: E) -> Self {
        Self { inner }
    }
}

fn live_of(data: Option<&Data>) -> Option<LiveCredential> {
    data?
        .get(&TypeId::of::<LiveCredential>())?
        .downcast_ref::<LiveCredential>()
        .cloned()
}

/// Whether the operation `request` selects is a subscription.
fn is_subscription(request: &mut Request) -> bool {
    let name = request.operation_name.clone();
    let Ok(doc) = request.parsed_query() else {
        return false;
    };
    doc.operations.iter().any(|(n, op)| {
        op.node.ty == async_graphql::parser::types::OperationType::Subscription
            && (name.is_none() || n.map(|n| n.as_str()) == name.as_deref())
    })
}

impl<E: Executor> Executor for LiveExecutor<E> {
    async fn execute(&self, request: Request) -> Response {
        self.inner.execute(request).await
    }

    fn execute_stream(
        &self,
        mut request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let live = live_of(Some(&request.data)).or_else(|| live_of(session_data.as_deref()));
        let Some(live) = live else {
            return self.inner.execute_stream(request, session_data);
        };
        if let Err(e) = live.current() {
            return async_graphql::futures_util::stream::once(
                async move { error_response(to_gql(e)) },
            )
            .boxed();
        }
        if !is_subscription(&mut request) {
            // A query or mutation runs to its end: cutting a mutation short could leave
            // half of it done.
            return self.inner.execute_stream(request, session_data);
        }
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<async_graphql::Error>();
        let watcher = async move {
            let why = live.changed().await;
            let _ = stop_tx.send(why);
        };
        let results = self
            .inner
            .execute_stream(request, session_data)
            .take_until(watcher);
        let last = async_graphql::futures_util::stream::once(stop_rx)
            .filter_map(|why| async { why.ok().map(error_response) });
        results.chain(last).boxed()
    }
}

/// The code a WebSocket is closed with when its credential ends (as for a refused
/// `connection_init`: graphql-ws clients do not retry it).
pub const REVOKED_CLOSE_CODE: u16 = 4403;
