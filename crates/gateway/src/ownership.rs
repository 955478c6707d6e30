//! This gateway process as the owner of the actions it runs (see ARCHITECTURE.md, "Cancellation").
//!
//! An action runs in a task the gateway owns, never on the request's future: a client that hangs up
//! drops only its wait for the answer. Each unfinished action row names the instance that runs it; the
//! instance heartbeats, and keeps in memory which of its actions are running right now. An unfinished
//! action that no running task holds — its instance died, or its task stopped on an error — is resolved
//! by `recovery`.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::task::TaskTracker;

use crate::GatewayError;

/// The default time an instance may miss heartbeats before its unfinished actions are recovered.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// This process as an owner of actions: its instance id, its lease, and the tasks running its actions.
#[derive(Debug)]
pub struct Owner {
    instance: String,
    lease: Duration,
    running: Mutex<HashSet<String>>,
    tasks: TaskTracker,
    /// Wakes the recovery loop early (an action's task stopped without finishing it).
    recover_now: Notify,
    /// When this instance's heartbeat was last stored (monotonic clock).
    last_heartbeat: Mutex<Option<Instant>>,
}

/// Holds an action as running in this process; dropping it (also by a panic) releases it to recovery.
#[derive(Debug)]
pub struct Running {
    owner: Arc<Owner>,
    action_id: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = self.owner.running.lock().unwrap_or_else(|e| e.into_inner());
        running.remove(&self.action_id);
    }
}

impl Owner {
    /// An owner under a fresh instance id (`gw_…`), whose actions other instances may recover once it has
    /// missed heartbeats for `lease`.
    pub fn new(lease: Duration) -> Self {
        Self {
            instance: crate::new_id("gw"),
            lease,
            running: Mutex::default(),
            tasks: TaskTracker::new(),
            recover_now: Notify::new(),
            last_heartbeat: Mutex::new(None),
        }
    }

    /// This process's instance id (stored as the owner of its unfinished actions).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// How long this instance may miss heartbeats before its unfinished actions are recovered.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Marks an action as running here until the returned guard drops; `None` if it already is.
    pub(crate) fn try_hold(self: &Arc<Self>, action_id: &str) -> Option<Running> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.insert(action_id.to_owned()).then(|| Running {
            owner: self.clone(),
            action_id: action_id.to_owned(),
        })
    }

    pub(crate) fn heartbeat_stored(&self) {
        *self.last_heartbeat.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// Whether this instance may still send changes: its last heartbeat is within half the lease, so no
    /// other instance can have taken its actions over.
    pub(crate) fn lease_is_fresh(&self) -> bool {
        let last = *self.last_heartbeat.lock().unwrap_or_else(|e| e.into_inner());
        last.is_some_and(|at| at.elapsed() < self.lease / 2)
    }

    /// Asks the recovery loop to look now rather than at its next tick.
    pub(crate) fn wake_recovery(&self) {
        self.recover_now.notify_one();
    }

    /// Resolves when someone called [`Owner::wake_recovery`] (or at once if they did since the last call).
    pub async fn recovery_requested(&self) {
        self.recover_now.notified().await;
    }

    /// Runs `work` to completion in a task of the gateway and waits for its result. If the caller stops
    /// waiting (the client hung up), the task goes on.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, GatewayError>
    where
        F: Future<Output = Result<T, GatewayError>> + Send + 'static,
        T: Send + 'static,
    {
        self.tasks
            .spawn(work)
            .await
            .map_err(|e| GatewayError::Stopped(format!("the action's task stopped: {e}")))?
    }

    /// Waits up to `limit` for the actions this process is running to finish (at shutdown). Actions still
    /// running after that are recovered by the next instance.
    pub async fn drain(&self, limit: Duration) -> bool {
        self.tasks.close();
        tokio::time::timeout(limit, self.tasks.wait()).await.is_ok()
    }

    /// How many action tasks are running now.
    pub fn running_tasks(&self) -> usize {
        self.tasks.len()
    }
}
