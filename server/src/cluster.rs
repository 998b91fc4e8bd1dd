//! Cluster membership → catalog.
//!
//! The catalog is fed by one task that drains a queue of [`MemberEvent`]s
//! in batches: it waits for one event, takes every event already queued
//! (up to [`MAX_BATCH`]), and applies them with one `apply_batch`, so a
//! burst of joins rebuilds each touched ring once.
//!
//! This registry is itself a member of [`REGISTRY_GROUP`], advertising its
//! gRPC address, so clients can find every registry from any one of them.
//! The gossip layer announces that to the other nodes; the local catalog
//! gets it here directly.

use crate::api::GroupHistory;
use crate::config::Settings;
use registry_core::{Catalog, MemberEvent, Service, REGISTRY_GROUP};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Most events applied in one catalog batch.
pub const MAX_BATCH: usize = 4096;
/// Capacity of the event queue between membership and the catalog.
pub const QUEUE: usize = 16 * 1024;

/// Applies one batch: records the groups that gain members (before the
/// catalog shows them, so a NotFound message never lags), then applies.
pub fn apply(catalog: &Catalog, history: &GroupHistory, events: Vec<MemberEvent>) {
    for e in &events {
        if let MemberEvent::Joined(s) | MemberEvent::Updated(s) = e {
            history.record(&s.group);
        }
    }
    let touched = catalog.apply_batch(events);
    if !touched.is_empty() {
        tracing::debug!(groups = ?touched, "catalog updated");
    }
}

/// Spawns the task that drains `rx` into `catalog` until every sender is
/// dropped.
pub fn spawn_feeder(
    catalog: Arc<Catalog>,
    history: Arc<GroupHistory>,
    mut rx: mpsc::Receiver<MemberEvent>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(64);
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            apply(&catalog, &history, std::mem::take(&mut batch));
        }
    })
}

/// This server's membership: the event queue feeding the catalog and the
/// registry's own entry in [`REGISTRY_GROUP`].
pub struct Cluster {
    me: Service,
    events: mpsc::Sender<MemberEvent>,
    catalog: Arc<Catalog>,
    history: Arc<GroupHistory>,
    feeder: JoinHandle<()>,
}

impl Cluster {
    /// Starts feeding `catalog` and adds this registry (id, gRPC address
    /// `advertise`) to [`REGISTRY_GROUP`].
    pub fn start(
        settings: &Settings,
        advertise: &str,
        catalog: Arc<Catalog>,
        history: Arc<GroupHistory>,
    ) -> Result<Cluster, String> {
        let me = Service::new(settings.id.clone(), REGISTRY_GROUP, advertise);
        me.validate()
            .map_err(|e| format!("this registry's own entry: {e}"))?;
        let (events, rx) = mpsc::channel(QUEUE);
        let feeder = spawn_feeder(catalog.clone(), history.clone(), rx);
        // Applied at once, so the registry lists itself as soon as it is ready.
        apply(&catalog, &history, vec![MemberEvent::Joined(me.clone())]);
        Ok(Cluster {
            me,
            events,
            catalog,
            history,
            feeder,
        })
    }

    /// This registry's entry in [`REGISTRY_GROUP`].
    pub fn me(&self) -> &Service {
        &self.me
    }

    /// A sender into the catalog's event queue: what the gossip layer
    /// feeds, and what in-process tests use to inject membership.
    pub fn events(&self) -> mpsc::Sender<MemberEvent> {
        self.events.clone()
    }

    /// Appends cluster metrics (gossip counters) in Prometheus text format.
    pub fn render_metrics(&self, _out: &mut String) {}

    /// Leaves the cluster: drops this registry from its own catalog (and,
    /// once gossip runs, tells the other nodes, which drop it at once).
    pub async fn leave(&self) {
        apply(
            &self.catalog,
            &self.history,
            vec![MemberEvent::Left(self.me.clone())],
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.feeder.abort();
    }
}
