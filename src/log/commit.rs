//! Durability: group commit under [`SyncPolicy::Always`], the periodic sync under
//! [`SyncPolicy::Interval`], [`Log::wait_durable`] and the explicit [`Log::sync`].
//!
//! One *syncer* per log does the fdatasyncs, on its own OS thread (never on an async worker).
//! It is started on demand by the first append that finds it idle, and it ends itself as soon as
//! every written record is durable, so an idle log costs no thread. Each round captures the
//! written end, fdatasyncs the active segment's `.log` then `.idx`, and marks everything below
//! the captured end durable (and, under `Always`, committed: visible and acknowledged). Appends
//! that arrive while a round is in flight are covered by the next round, so N concurrent
//! appenders cost far fewer than N fdatasyncs. Sealed segments were synced when they rolled.
//!
//! If an fdatasync fails the log is marked failed (see [`LogError::Failed`]): after a failed
//! fsync the kernel may have dropped the dirty pages, so retrying could acknowledge lost data.
//! Reopening the log re-verifies the tail from what is really on disk.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::Instant;

use super::{Inner, Log, LogError, Offset, SyncPolicy, lock};

/// Coordination between appenders, the syncer and `Log`'s drop.
#[derive(Debug, Default)]
pub(super) struct Committer {
    /// std `Mutex` + `Condvar`: the syncer is a plain thread that sleeps (under `Interval`) until
    /// its next round is due or the log closes; nothing here is held across an `.await`.
    coord: Mutex<Coord>,
    wake: Condvar,
    /// Completed fdatasync rounds (including the ones done by rollover and `Log::sync`).
    syncs: AtomicU64,
    /// Set once, when an fdatasync fails; the reason.
    failed: OnceLock<String>,
    /// Test hook: extra milliseconds each syncer round waits before its fdatasync, to make
    /// group commit observable on fast disks.
    #[cfg(test)]
    pub(super) delay_ms: AtomicU64,
}

#[derive(Debug, Default)]
struct Coord {
    /// A syncer thread exists. Set by the appender that spawns it; cleared by the syncer itself,
    /// under this lock, only after it has seen no unsynced records, so no append is left behind.
    running: bool,
    /// The `Log` was dropped: an `Interval` syncer stops waiting, syncs and ends.
    closing: bool,
    last_sync: Option<Instant>,
}

impl Committer {
    pub(super) fn count_sync(&self) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn close(&self) {
        lock(&self.coord).closing = true;
        self.wake.notify_all();
    }
}

impl Inner {
    /// The fault-injection hook, if configured ([`super::LogConfig::before_sync`]).
    pub(super) fn before_sync(&self) {
        if let Some(hook) = &self.config.before_sync {
            (hook.0)(&self.dir);
        }
    }

    /// Refuses to go on once an fdatasync has failed.
    pub(super) fn check_failed(&self) -> Result<(), LogError> {
        match self.commit.failed.get() {
            Some(reason) => Err(LogError::Failed { dir: self.dir.clone(), reason: reason.clone() }),
            None => Ok(()),
        }
    }

    /// Marks the log failed after an fdatasync error and wakes every durability waiter.
    pub(super) fn fail(&self, e: LogError) -> LogError {
        tracing::error!(dir = %self.dir.display(), error = %e, "fsync failed; the log must be reopened");
        let _ = self.commit.failed.set(e.to_string());
        self.committed_tx.send_modify(|_| {});
        LogError::Failed { dir: self.dir.clone(), reason: e.to_string() }
    }

    /// One round: make everything written so far durable.
    fn sync_once(&self) -> Result<(), LogError> {
        self.before_sync();
        let (files, end) = {
            let st = lock(&self.state);
            (st.active.files.clone(), st.written)
        };
        files.sync_data()?;
        self.commit.count_sync();
        let committed = {
            let mut st = lock(&self.state);
            st.durable = st.durable.max(end);
            if self.config.sync == SyncPolicy::Always {
                st.committed = st.committed.max(end);
            }
            st.committed
        };
        self.publish(committed);
        Ok(())
    }

    /// Called after every append: makes sure a syncer will cover it.
    pub(super) fn kick_syncer(self: &Arc<Self>) {
        if self.config.sync == SyncPolicy::Never || self.commit.failed.get().is_some() {
            return;
        }
        {
            let mut c = lock(&self.commit.coord);
            if c.running {
                return;
            }
            c.running = true;
        }
        let me = Arc::clone(self);
        // Detached on purpose: the thread ends itself when no unsynced record is left (or the
        // log has failed); it holds an `Arc<Inner>`, so the files outlive it.
        let spawned =
            thread::Builder::new().name("sluice-log-sync".into()).spawn(move || me.run_syncer());
        if let Err(e) = spawned {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot start the syncer; syncing inline");
            lock(&self.commit.coord).running = false;
            if let Err(e) = self.sync_once() {
                self.fail(e);
            }
        }
    }

    /// The syncer thread's body.
    fn run_syncer(&self) {
        loop {
            if let SyncPolicy::Interval(every) = self.config.sync {
                let mut c = lock(&self.commit.coord);
                while !c.closing {
                    let now = Instant::now();
                    let due = c.last_sync.map_or(now, |t| t + every);
                    if now >= due {
                        break;
                    }
                    c = match self.commit.wake.wait_timeout(c, due - now) {
                        Ok((c, _)) => c,
                        Err(p) => p.into_inner().0,
                    };
                }
            }
            #[cfg(test)]
            {
                let ms = self.commit.delay_ms.load(Ordering::Relaxed);
                thread::sleep(std::time::Duration::from_millis(ms));
            }
            let result = self.sync_once();
            let mut c = lock(&self.commit.coord);
            c.last_sync = Some(Instant::now());
            if let Err(e) = result {
                c.running = false;
                drop(c);
                self.fail(e);
                return;
            }
            let more = {
                let st = lock(&self.state);
                st.written > st.durable
            };
            if !more {
                c.running = false;
                return;
            }
        }
    }
}

impl Log {
    /// Resolves once `offset` is durable per the policy: under `Always` once an fdatasync that
    /// started after `offset` was written has completed (if one is in flight, the next one);
    /// under `Interval` and `Never` at once (the write is done). Fails with
    /// [`LogError::NotWritten`] for an offset never appended and [`LogError::Failed`] if an
    /// fdatasync failed.
    pub async fn wait_durable(&self, offset: Offset) -> Result<(), LogError> {
        let inner = &self.inner;
        let written = lock(&inner.state).written;
        if offset >= written {
            return Err(LogError::NotWritten { offset, end: written });
        }
        if inner.config.sync != SyncPolicy::Always {
            return inner.check_failed();
        }
        let mut rx = inner.committed_tx.subscribe();
        let reached = rx
            .wait_for(|c| *c > offset || inner.commit.failed.get().is_some())
            .await
            .map(|c| *c > offset);
        match reached {
            Ok(true) => Ok(()),
            Ok(false) => inner.check_failed(),
            Err(_) => Err(LogError::Failed { dir: inner.dir.clone(), reason: "log closed".into() }),
        }
    }

    /// fdatasyncs everything written so far, now (shutdown). Under `Always` this also commits.
    pub fn sync(&self) -> Result<(), LogError> {
        self.inner.check_failed()?;
        self.inner.sync_once().map_err(|e| self.inner.fail(e))
    }

    /// Completed fdatasync rounds since open (group-commit tests and metrics).
    pub fn syncs(&self) -> u64 {
        self.inner.commit.syncs.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_commit_covers_many_appends_with_few_syncs() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let log = Arc::new(open(dir.path(), config(SyncPolicy::Always), &clock()));
        log.inner.commit.delay_ms.store(20, Ordering::Relaxed);
        const N: i64 = 64;
        let mut tasks = Vec::new();
        for i in 0..N {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let o = log.append(rec(0, format!("r{i}").as_bytes()))?;
                log.wait_durable(o).await?;
                // Durable means committed: it is readable now.
                anyhow::ensure!(log.read(o)?.is_some(), "{o} not readable after wait_durable");
                anyhow::Ok(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        assert_eq!(log.committed_end(), Offset(N as u64));
        let syncs = log.syncs();
        assert!(syncs >= 1 && syncs < N as u64 / 4, "{syncs} syncs for {N} appends");
        Ok(())
    }

    #[tokio::test]
    async fn a_record_is_invisible_until_committed_under_always() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let log = open(dir.path(), config(SyncPolicy::Always), &clock());
        log.inner.commit.delay_ms.store(200, Ordering::Relaxed);
        let mut rx = log.subscribe();
        let o = log.append(rec(0, b"x"))?;
        // Written but the syncer is still sleeping before its fdatasync.
        assert_eq!(log.committed_end(), Offset(0));
        assert_eq!(log.read(o)?, None);
        assert_eq!(log.entry(o)?, None);
        assert!(log.entries(Offset(0), Offset(10), 10)?.is_empty());
        assert_eq!(log.stats().records, 0);
        log.wait_durable(o).await?;
        assert!(log.read(o)?.is_some());
        rx.changed().await?;
        assert_eq!(*rx.borrow(), Offset(1));
        assert!(matches!(log.wait_durable(Offset(5)).await, Err(LogError::NotWritten { .. })));
        Ok(())
    }

    #[tokio::test]
    async fn never_and_interval_are_visible_at_once() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let never = open(&dir.path().join("n"), config(SyncPolicy::Never), &clock());
        let o = never.append(rec(0, b"x"))?;
        never.wait_durable(o).await?;
        assert!(never.read(o)?.is_some());
        assert_eq!(never.syncs(), 0);
        never.sync()?;
        assert_eq!(never.syncs(), 1);

        let every = SyncPolicy::Interval(Duration::from_millis(20));
        let interval = open(&dir.path().join("i"), config(every), &clock());
        let o = interval.append(rec(0, b"x"))?;
        assert!(interval.read(o)?.is_some());
        interval.wait_durable(o).await?;
        // The background sync comes by itself.
        for _ in 0..500 {
            if interval.syncs() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(interval.syncs() > 0);
        Ok(())
    }

    #[test]
    fn wait_durable_resolves_without_a_runtime_driving_the_syncer() -> anyhow::Result<()> {
        // The syncer is a plain thread: a blocking caller with a throwaway runtime works too.
        let dir = tempfile::tempdir()?;
        let log = open(dir.path(), config(SyncPolicy::Always), &clock());
        let o = log.append(rec(0, b"x"))?;
        let rt = tokio::runtime::Builder::new_current_thread().build()?;
        rt.block_on(log.wait_durable(o))?;
        assert_eq!(log.committed_end(), Offset(1));
        Ok(())
    }
}
