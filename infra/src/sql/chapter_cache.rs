//! Chapters kept in memory for display reads ([`ChapterRepository::show_chapter`]): a
//! chapter shown again is copied from memory instead of read from the database.
//!
//! Bounded in bytes (`SqlOptions::chapter_cache_bytes`; least recently shown out first).
//! An entry is dropped as soon as it may be out of date:
//! - **this process's writes**: every write of a `chapters` row through [`SqlStore`]
//!   forgets that chapter once its transaction ended (whatever its outcome); a write that
//!   can touch many rows (a volume removed sets their `volume_id` to NULL) empties the cache;
//! - **other processes' writes (SQLite)**: before answering, the cache asks SQLite for
//!   the file's `PRAGMA data_version` on a connection of its own; it moves whenever any
//!   other connection (of this process or another, such as a `znovel worker` on the same
//!   file) committed a change, and the cache then drops everything. A few microseconds
//!   (a read transaction: locks on the WAL index), no disk read, so a version read
//!   stands for [`DATA_VERSION_STANDS`] (1 ms): another process's commit is seen within
//!   that, this process's own writes at once;
//! - **other processes' writes (PostgreSQL)**: a trigger on `chapters` sends
//!   `NOTIFY znovel_chapters, '<id>'` with every row written, delivered when its
//!   transaction commits; each store keeps one connection listening — opened at its
//!   first display read, so a process that never shows a chapter (`znovel migrate`, a job
//!   worker) holds no such connection — and forgets the chapters named. While that
//!   connection is not listening (starting, reconnecting after an error, the trigger
//!   missing because the migrations have not run), the cache is off:
//!   every read goes to the database and nothing is kept; it is emptied again when
//!   listening resumes. The connection's `application_name` is `znovel-chapter-cache`.
//!   It is checked every [`PING_EVERY`]; one that does not answer within
//!   [`PING_TIMEOUT`] is replaced (a silent network partition would otherwise leave stale
//!   entries forever).
//!
//! A read that raced a write never leaves the old row behind: forgetting bumps an epoch
//! (under the lock that guards the entries), a read notes the epoch before it asks the
//! database and keeps its row only if the epoch has not moved since.
//!
//! What the cache trades: another process's write is seen once its notification arrived
//! (PostgreSQL: typically well under a millisecond after its commit) or once the last
//! version read has stood its millisecond (SQLite), not at its commit. Reads that decide
//! a write (optimistic versions, the pipeline, memory, validation) use
//! [`ChapterRepository::get_chapter`], which always reads the database.
//!
//! [`ChapterRepository::show_chapter`]: znovel_domain::ports::ChapterRepository::show_chapter
//! [`ChapterRepository::get_chapter`]: znovel_domain::ports::ChapterRepository::get_chapter
//! [`SqlStore`]: super::SqlStore

use crate::bounded::{Bounded, lock};
use diesel::QueryResult;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::BigInt;
use diesel::sqlite::{Sqlite, SqliteConnection};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};
use znovel_domain::ids::{ChapterId, TenantId};
use znovel_domain::model::Chapter;

/// The channel the `chapters` trigger notifies.
pub(crate) const CHANNEL: &str = "znovel_chapters";

/// How often the listening connection is checked.
pub(crate) const PING_EVERY: Duration = Duration::from_secs(5);

/// How long the check may take before the connection is replaced.
pub(crate) const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// Fixed cost counted per entry besides its text (the struct, ids, the map's node).
const ENTRY_OVERHEAD: usize = 512;

/// Chapters kept for display reads. See the module documentation.
pub(crate) struct ChapterCache {
    entries: Mutex<Bounded<ChapterId, Arc<Chapter>>>,
    /// Moves (under `entries`' lock) whenever an entry may have gone out of date.
    epoch: AtomicU64,
    /// Whether entries may be served and kept (PostgreSQL: while listening).
    on: AtomicBool,
    /// Whether the cache has any room at all.
    enabled: bool,
    /// SQLite: the file's data version, checked before each answer.
    data_version: Option<DataVersion>,
    /// PostgreSQL: where to listen for chapter writes, from the first display read on.
    listener: Option<Listener>,
    /// Display reads answered from memory.
    hits: AtomicU64,
    /// Display reads that went to the database.
    misses: AtomicU64,
    /// Notifications of chapter writes heard (PostgreSQL).
    notifications: AtomicU64,
}

/// What a store's chapter cache holds and has done (see `SqlStore::chapter_cache_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChapterCacheStats {
    /// Whether display reads may be answered from memory now.
    pub serving: bool,
    /// Chapters held.
    pub entries: usize,
    /// Bytes they are counted as.
    pub bytes: usize,
    /// Display reads answered from memory since the store was opened.
    pub hits: u64,
    /// Display reads that went to the database since the store was opened.
    pub misses: u64,
    /// Notifications of chapter writes heard since the store was opened (PostgreSQL).
    pub notifications: u64,
}

/// A PostgreSQL cache's listener, started once.
struct Listener {
    url: String,
    connect_timeout: Duration,
    started: Once,
}

/// SQLite's `PRAGMA data_version` on a connection of its own, and the value last seen.
pub(crate) struct DataVersion {
    conn: Mutex<(SqliteConnection, Option<i64>)>,
    /// When the version was last read, nanoseconds after `since`; 0: never.
    checked: AtomicU64,
    since: Instant,
}

/// How long a version read stands for: answers within it do not ask SQLite again, so
/// another process's commit is seen at most this long after it (this process's own
/// writes forget their chapters at once). Asking costs a read transaction — locks on the
/// WAL index, system calls — at every display read otherwise.
pub(crate) const DATA_VERSION_STANDS: Duration = Duration::from_millis(1);

/// `PRAGMA data_version` as a query of its own type, so diesel prepares it once per
/// connection and finds it in its statement cache afterwards (`sql_query` would be
/// prepared again at every call: most of the check's cost).
#[derive(Debug, Clone, Copy, QueryId)]
struct PragmaDataVersion;

impl Query for PragmaDataVersion {
    type SqlType = BigInt;
}

impl QueryFragment<Sqlite> for PragmaDataVersion {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql("PRAGMA data_version");
        Ok(())
    }
}

impl diesel::RunQueryDsl<SqliteConnection> for PragmaDataVersion {}

impl DataVersion {
    /// Watches the file `conn` is open on.
    pub(crate) fn new(conn: SqliteConnection) -> Self {
        Self {
            conn: Mutex::new((conn, None)),
            checked: AtomicU64::new(0),
            since: Instant::now(),
        }
    }

    /// Whether another connection committed a change since the version was last read
    /// (also `true` on the first read, and when the version cannot be read); `false`
    /// without asking SQLite while the last read stands ([`DATA_VERSION_STANDS`]). Runs
    /// `then` first when moved, before another caller can see the new version as already
    /// seen (or a second reader would answer an entry the first is about to drop).
    fn moved(&self, then: impl FnOnce()) -> bool {
        let at = (self.since.elapsed().as_nanos() as u64).max(1);
        // A read made at or after `at` (by another caller too) stands for this answer.
        let stands = || {
            let checked = self.checked.load(Ordering::Acquire);
            checked != 0 && at.saturating_sub(checked) < DATA_VERSION_STANDS.as_nanos() as u64
        };
        if stands() {
            return false;
        }
        let mut guard = lock(&self.conn);
        if stands() {
            return false;
        }
        let (conn, seen) = &mut *guard;
        let now = diesel::RunQueryDsl::get_result::<i64>(PragmaDataVersion, conn).ok();
        let moved = now.is_none() || now != *seen;
        if moved {
            then();
        }
        *seen = now;
        // Read at or after `at`: it stands from `at` on (unread, it stands for nothing).
        self.checked
            .store(if now.is_some() { at } else { 0 }, Ordering::Release);
        moved
    }
}

impl ChapterCache {
    /// A cache of at most `max_bytes`; `0` turns it off. `on`: whether it serves from the
    /// start (SQLite) or only once told (PostgreSQL, when its listener runs).
    pub(crate) fn new(max_bytes: usize, on: bool) -> Self {
        Self {
            entries: Mutex::new(Bounded::new(usize::MAX, max_bytes)),
            epoch: AtomicU64::new(0),
            on: AtomicBool::new(on && max_bytes > 0),
            enabled: max_bytes > 0,
            data_version: None,
            listener: None,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            notifications: AtomicU64::new(0),
        }
    }

    /// A SQLite store's cache: on from the start, checking `data_version` before each
    /// answer.
    pub(crate) fn sqlite(max_bytes: usize, data_version: DataVersion) -> Self {
        Self {
            data_version: Some(data_version),
            ..Self::new(max_bytes, true)
        }
    }

    /// A PostgreSQL store's cache: off until [`ChapterCache::wake`] has started its
    /// listener on `url` and that listener is listening.
    pub(crate) fn postgres(max_bytes: usize, url: String, connect_timeout: Duration) -> Self {
        let cache = Self::new(max_bytes, false);
        Self {
            listener: cache.enabled.then(|| Listener {
                url,
                connect_timeout,
                started: Once::new(),
            }),
            ..cache
        }
    }

    /// Starts the listener of a PostgreSQL cache, the first time only (on the current
    /// tokio runtime); nothing for SQLite or a cache that is off.
    pub(crate) fn wake(self: &Arc<Self>) {
        if let Some(l) = &self.listener {
            l.started.call_once(|| {
                listen::spawn(Arc::downgrade(self), l.url.clone(), l.connect_timeout);
            });
        }
    }

    /// The kept chapter `id` of `tenant`, if any. A chapter of another tenant is never
    /// answered (the database read that follows finds nothing, as row-level security
    /// would).
    pub(crate) fn get(&self, tenant: TenantId, id: ChapterId) -> Option<Chapter> {
        let kept = self.lookup(tenant, id);
        let counter = if kept.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        kept
    }

    fn lookup(&self, tenant: TenantId, id: ChapterId) -> Option<Chapter> {
        if !self.on.load(Ordering::Acquire) {
            return None;
        }
        if let Some(version) = &self.data_version
            && version.moved(|| self.forget_all())
        {
            return None;
        }
        let kept = lock(&self.entries).get(&id).cloned()?;
        (kept.tenant_id == tenant).then(|| Chapter::clone(&kept))
    }

    /// The epoch to note before reading the database (see [`ChapterCache::keep`]).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Keeps `chapter`, read from the database after [`ChapterCache::epoch`] answered
    /// `epoch`, unless something may have changed it since.
    pub(crate) fn keep(&self, epoch: u64, chapter: &Chapter) {
        if !self.on.load(Ordering::Acquire) {
            return;
        }
        let mut entries = lock(&self.entries);
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        let bytes = ENTRY_OVERHEAD
            + chapter.title.len()
            + chapter.outline.len()
            + chapter.content.len()
            + chapter.summary.len();
        entries.insert(chapter.id, Arc::new(chapter.clone()), bytes);
    }

    /// Drops chapter `id` (it was written, or may have been).
    pub(crate) fn forget(&self, id: ChapterId) {
        self.invalidate(|entries| entries.remove(&id));
    }

    /// Drops every chapter (a write touched rows it does not name).
    pub(crate) fn forget_all(&self) {
        self.invalidate(Bounded::clear);
    }

    /// Turns serving on or off; either way the entries are dropped (while off, writes
    /// elsewhere may have gone unnoticed).
    pub(crate) fn set_on(&self, on: bool) {
        self.invalidate(|entries| {
            entries.clear();
            self.on.store(on, Ordering::Release);
        });
    }

    /// Moves the epoch and applies `change` under the entries' lock: every change that may
    /// make a kept row out of date goes through here, so no read in flight keeps one.
    fn invalidate(&self, change: impl FnOnce(&mut Bounded<ChapterId, Arc<Chapter>>)) {
        if !self.enabled {
            return;
        }
        let mut entries = lock(&self.entries);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        change(&mut entries);
    }

    /// Whether entries may be served now.
    pub(crate) fn serving(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    /// Counts a notification of a chapter write.
    fn heard(&self) {
        self.notifications.fetch_add(1, Ordering::Relaxed);
    }

    /// What it holds and has done.
    pub(crate) fn stats(&self) -> ChapterCacheStats {
        let (entries, bytes) = self.held();
        ChapterCacheStats {
            serving: self.serving(),
            entries,
            bytes,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            notifications: self.notifications.load(Ordering::Relaxed),
        }
    }

    /// Entries and bytes held.
    fn held(&self) -> (usize, usize) {
        let entries = lock(&self.entries);
        (entries.len(), entries.bytes())
    }
}

/// PostgreSQL: keeps one connection listening on [`CHANNEL`] for as long as `cache` is
/// alive, forgetting each chapter named; the cache serves only while it listens.
pub(crate) mod listen {
    use super::{CHANNEL, ChapterCache, PING_EVERY, PING_TIMEOUT};
    use crate::sql::pool::establish_pg;
    use diesel::QueryableByName;
    use diesel::sql_types::Bool;
    use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
    use futures_util::StreamExt;
    use std::sync::Weak;
    use std::time::Duration;
    use znovel_domain::ids::ChapterId;

    /// The listening connection's `application_name` (in `pg_stat_activity`).
    pub(crate) const APPLICATION_NAME: &str = "znovel-chapter-cache";

    /// Waits between attempts to listen again.
    const RETRY_AFTER: Duration = Duration::from_secs(1);

    #[derive(QueryableByName)]
    struct Present {
        #[diesel(sql_type = Bool)]
        present: bool,
    }

    /// Starts the listener task (on the current tokio runtime).
    pub(crate) fn spawn(cache: Weak<ChapterCache>, url: String, connect_timeout: Duration) {
        tokio::spawn(async move {
            loop {
                let outcome = listen(&cache, &url, connect_timeout).await;
                let Some(c) = cache.upgrade() else { return };
                c.set_on(false);
                drop(c);
                match outcome {
                    Ok(()) => return,
                    Err(error) => {
                        tracing::warn!(%error, "chapter cache off: not listening for chapter writes");
                    }
                }
                tokio::time::sleep(RETRY_AFTER).await;
            }
        });
    }

    /// Listens until the connection fails (`Err`) or the cache is gone (`Ok`).
    async fn listen(
        cache: &Weak<ChapterCache>,
        url: &str,
        connect_timeout: Duration,
    ) -> anyhow::Result<()> {
        let mut conn = establish_pg(url, connect_timeout).await?;
        conn.batch_execute(&format!("SET application_name = '{APPLICATION_NAME}'"))
            .await?;
        let present: Present = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'chapters_notify' \
             AND tgrelid = to_regclass('chapters') AND tgenabled <> 'D') AS present",
        )
        .get_result(&mut conn)
        .await?;
        if !present.present {
            anyhow::bail!(
                "the chapters_notify trigger is missing or disabled (run the migrations)"
            );
        }
        conn.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        {
            let Some(c) = cache.upgrade() else {
                return Ok(());
            };
            c.set_on(true);
        }
        tracing::debug!("chapter cache on: listening for chapter writes");
        loop {
            if !forward(cache, &mut conn).await? {
                return Ok(());
            }
            let ping = tokio::time::timeout(PING_TIMEOUT, conn.batch_execute("SELECT 1")).await;
            match ping {
                Ok(answered) => answered?,
                Err(_) => {
                    anyhow::bail!("the listening connection did not answer in {PING_TIMEOUT:?}")
                }
            }
        }
    }

    /// Forgets the chapters notified during [`PING_EVERY`]; `false` once the cache is gone.
    async fn forward(
        cache: &Weak<ChapterCache>,
        conn: &mut AsyncPgConnection,
    ) -> anyhow::Result<bool> {
        let mut notes = std::pin::pin!(conn.notifications_stream());
        let until = tokio::time::sleep(PING_EVERY);
        let mut until = std::pin::pin!(until);
        loop {
            tokio::select! {
                note = notes.next() => {
                    let Some(c) = cache.upgrade() else { return Ok(false) };
                    match note {
                        Some(Ok(n)) => {
                            match n.payload.parse::<uuid::Uuid>() {
                                Ok(id) => c.forget(ChapterId::from(id)),
                                Err(_) => c.forget_all(),
                            }
                            c.heard();
                        }
                        Some(Err(e)) => return Err(e.into()),
                        None => anyhow::bail!("the listening connection closed"),
                    }
                }
                () = &mut until => return Ok(cache.strong_count() > 0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ChapterCache;
    use znovel_domain::ids::{ChapterId, NovelId, TenantId};
    use znovel_domain::model::{Chapter, ChapterStatus, Origin};

    fn chapter(tenant: TenantId, content: &str) -> Chapter {
        Chapter {
            id: ChapterId::new(),
            tenant_id: tenant,
            novel_id: NovelId::new(),
            volume_id: None,
            seq: 1,
            title: "t".into(),
            outline: String::new(),
            content: content.into(),
            summary: String::new(),
            summary_origin: Origin::Author,
            story_time_start: None,
            story_time_end: None,
            word_count: 1,
            target_word_count: None,
            status: ChapterStatus::Draft,
            version: 1,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_read_that_raced_a_write_does_not_keep_the_old_row() {
        let cache = ChapterCache::new(1 << 20, true);
        let t = TenantId::new();
        let c = chapter(t, "old");
        let before = cache.epoch();
        cache.forget(c.id); // a write committed while the read was in flight
        cache.keep(before, &c);
        assert!(cache.get(t, c.id).is_none());
        let before = cache.epoch();
        cache.keep(before, &c);
        assert_eq!(
            cache.get(t, c.id).map(|c| c.content),
            Some("old".to_owned())
        );
    }

    #[test]
    fn another_tenant_never_gets_a_kept_chapter() {
        let cache = ChapterCache::new(1 << 20, true);
        let t = TenantId::new();
        let c = chapter(t, "mine");
        cache.keep(cache.epoch(), &c);
        assert!(cache.get(TenantId::new(), c.id).is_none());
        assert!(cache.get(t, c.id).is_some());
    }

    #[test]
    fn off_it_serves_and_keeps_nothing_and_turning_it_on_starts_empty() {
        let cache = ChapterCache::new(1 << 20, false);
        let t = TenantId::new();
        let c = chapter(t, "x");
        cache.keep(cache.epoch(), &c);
        assert!(cache.get(t, c.id).is_none());
        cache.set_on(true);
        cache.keep(cache.epoch(), &c);
        assert!(cache.get(t, c.id).is_some());
        cache.set_on(false);
        assert!(cache.get(t, c.id).is_none());
        cache.set_on(true);
        assert!(
            cache.get(t, c.id).is_none(),
            "entries kept before going off are dropped"
        );
        let off = ChapterCache::new(0, true);
        off.keep(off.epoch(), &c);
        assert!(off.get(t, c.id).is_none() && !off.enabled);
    }

    #[test]
    fn it_stays_within_its_bytes_least_recently_shown_out_first() {
        let cache = ChapterCache::new(3 * (512 + 1_001), true);
        let t = TenantId::new();
        let text = "x".repeat(1_000);
        let cs: Vec<Chapter> = (0..4).map(|_| chapter(t, &text)).collect();
        for c in &cs[..3] {
            cache.keep(cache.epoch(), c);
        }
        assert!(cache.get(t, cs[0].id).is_some());
        cache.keep(cache.epoch(), &cs[3]);
        let (n, bytes) = cache.held();
        assert!(n == 3 && bytes <= 3 * (512 + 1_001));
        assert!(
            cache.get(t, cs[1].id).is_none(),
            "the least recently shown went"
        );
        assert!(cache.get(t, cs[0].id).is_some() && cache.get(t, cs[3].id).is_some());
        cache.forget_all();
        assert_eq!(cache.held(), (0, 0));
    }

    /// SQLite: a commit by another connection is seen by every read that starts once the
    /// last version read has stood its time, and nothing moves without a commit.
    #[test]
    fn a_commit_elsewhere_is_seen_once_the_last_version_read_has_stood() {
        use super::{DATA_VERSION_STANDS, DataVersion};
        use diesel::connection::SimpleConnection;
        let db = crate::testing::TestDatabase::sqlite().unwrap();
        let file = db.sqlite_file().unwrap();
        let mut writer = crate::sql::pool::open_sqlite(&file).unwrap();
        writer.batch_execute("CREATE TABLE t (x INTEGER)").unwrap();
        let version = DataVersion::new(crate::sql::pool::open_sqlite(&file).unwrap());
        let stood = || std::thread::sleep(DATA_VERSION_STANDS * 2);
        assert!(
            version.moved(|| ()),
            "the first read has nothing to compare with"
        );
        for _ in 0..3 {
            stood();
            assert!(!version.moved(|| panic!("nothing to drop")), "no commit");
            writer.batch_execute("INSERT INTO t VALUES (1)").unwrap();
            stood();
            let mut dropped = false;
            assert!(version.moved(|| dropped = true), "a commit elsewhere");
            assert!(dropped);
        }
    }
}
