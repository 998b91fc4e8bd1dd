//! Groups → members → an immutable ring snapshot with a version and a
//! checksum ([`GroupSnapshot::checksum`], the ring's).
//!
//! Writers (the gossip event feed) go through one mutex and apply events in
//! batches, rebuilding each touched group's ring once per batch. Readers
//! load an `Arc` snapshot without taking that lock, so a lookup never waits
//! for a rebuild. Versions come from one catalog-wide counter, so a group's
//! version only grows, even across "last member left" and "first member
//! joined again".
//!
//! Count limits ([`CatalogLimits`]: groups, members per group, the bytes
//! of all rings together, and the ring's own cap on a group's total
//! weight) are enforced here, where
//! membership enters: an event that would exceed one is refused, counted
//! in [`Catalog::limit_rejections`], logged at most once a minute per
//! limit, and changes nothing. The refused member waits (latest metadata,
//! at most [`MAX_WAITING`] of them) and is admitted, in id order, as soon
//! as a change makes room (a leave, a move, a lighter weight); its own
//! leave forgets it.

mod admit;
mod snapshot;
#[cfg(test)]
mod tests;

pub use snapshot::{GroupSnapshot, Route};

use crate::error::Result;
use crate::limits::{CatalogLimits, LimitCounters, RefusalLog};
use crate::ring::RingPlan;
use crate::service::{MemberEvent, Service};
use crate::validate;
use admit::remove_member;
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

pub use crate::limits::MAX_WAITING;

/// Ring bytes freed after which the allocator is asked to give memory back
/// to the system (rings of a few KB live in the heap, which the C
/// allocator otherwise keeps).
const TRIM_AFTER_FREED: usize = 4 << 20;

/// One group's members and the plan of their ring (total weight, bytes).
#[derive(Default)]
struct Group {
    /// id → service.
    members: BTreeMap<String, Arc<Service>>,
    /// Size of the ring the members get, kept up to date with them.
    plan: RingPlan,
}

/// Writer-side state, behind the catalog's mutex.
#[derive(Default)]
struct State {
    /// Catalog-wide version counter.
    version: u64,
    /// group → its members.
    groups: HashMap<String, Group>,
    /// Bytes of every group's ring together (sum of the groups' plans).
    ring_bytes: usize,
    /// Ring bytes freed since the allocator was last asked to give memory
    /// back to the system.
    freed_since_trim: usize,
    /// id → group, so an id that moves to another group leaves the old one.
    group_of: HashMap<String, String>,
    /// Watch channels, one per watched group.
    watchers: HashMap<String, watch::Sender<Arc<GroupSnapshot>>>,
    /// Members refused by a count limit, by id, with their latest metadata.
    waiting: BTreeMap<String, Service>,
    /// Rate limit of the refusal warnings.
    refusals: RefusalLog,
}

/// Asks the C allocator to return free heap memory to the system (glibc
/// keeps freed small blocks otherwise); a no-op elsewhere.
fn give_memory_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and trims the allocator's own free
    // lists; it takes no pointers from us.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Every group's current snapshot, fed by membership events.
pub struct Catalog {
    state: Mutex<State>,
    published: ArcSwap<HashMap<String, Arc<GroupSnapshot>>>,
    limits: CatalogLimits,
    rejections: LimitCounters,
}

impl Default for Catalog {
    fn default() -> Self {
        Self::new()
    }
}

impl Catalog {
    /// An empty catalog with the default [`CatalogLimits`].
    pub fn new() -> Self {
        Self::with_limits(CatalogLimits::default())
    }

    /// An empty catalog enforcing `limits`.
    pub fn with_limits(limits: CatalogLimits) -> Self {
        Catalog {
            state: Mutex::new(State::default()),
            published: ArcSwap::from_pointee(HashMap::new()),
            limits,
            rejections: LimitCounters::default(),
        }
    }

    /// The count limits this catalog enforces.
    pub fn limits(&self) -> CatalogLimits {
        self.limits
    }

    /// Membership events refused so far, by limit (groups, members per
    /// group, ring weight, and the metadata limits of [`Service::validate`]).
    pub fn limit_rejections(&self) -> &LimitCounters {
        &self.rejections
    }

    /// Bytes of every group's ring together, as the ring-memory budget
    /// ([`CatalogLimits::max_ring_memory`]) counts them.
    pub fn ring_memory(&self) -> usize {
        self.lock().ring_bytes
    }

    /// Refused members waiting for room (at most [`MAX_WAITING`]).
    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave `State` half-written
        // in a way readers see (they read `published`), so keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one event. See [`Catalog::apply_batch`].
    pub fn apply(&self, event: MemberEvent) {
        self.apply_batch([event]);
    }

    /// Applies events in order, then rebuilds every touched group once and
    /// publishes the new snapshots. Events carrying invalid metadata are
    /// skipped (and logged); they change nothing. Returns the groups whose
    /// membership changed.
    pub fn apply_batch(&self, events: impl IntoIterator<Item = MemberEvent>) -> Vec<String> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let mut touched = BTreeSet::new();
        for event in events {
            self.apply_event(state, event, &mut touched);
        }
        // Any change may have made room (a leave, a move, a lighter
        // weight): try the waiting members again, in id order.
        if !touched.is_empty() && !state.waiting.is_empty() {
            let ids: Vec<String> = state.waiting.keys().cloned().collect();
            for id in ids {
                if let Some(s) = state.waiting.remove(&id) {
                    self.admit(state, s, &mut touched, true);
                }
            }
        }
        if touched.is_empty() {
            return Vec::new();
        }
        self.publish(state, &touched);
        if state.freed_since_trim >= TRIM_AFTER_FREED {
            state.freed_since_trim = 0;
            give_memory_back();
        }
        touched.into_iter().collect()
    }

    /// Applies one event to the writer state; skips (and logs) one with
    /// invalid metadata. Adds the groups it changes to `touched`.
    fn apply_event(&self, state: &mut State, event: MemberEvent, touched: &mut BTreeSet<String>) {
        let svc = event.service();
        if let Err(e) = validate::id(&svc.id).and_then(|_| validate::group(&svc.group)) {
            tracing::warn!(error = %e, "catalog: ignoring event with invalid metadata");
            return;
        }
        match event {
            MemberEvent::Joined(s) | MemberEvent::Updated(s) => {
                if let Err(e) = s.validate() {
                    if let Some(limit) = s.exceeded_limit() {
                        self.rejections.record(limit);
                    }
                    tracing::warn!(error = %e, id = %s.id, "catalog: ignoring invalid member");
                    return;
                }
                self.admit(state, s, touched, false);
            }
            MemberEvent::Left(s) | MemberEvent::Failed(s) => {
                state.waiting.remove(&s.id);
                // Remove the id from the group it is in now, whatever
                // group the event names.
                if let Some(group) = state.group_of.remove(&s.id) {
                    remove_member(state, &group, &s.id);
                    touched.insert(group);
                }
            }
        }
    }

    /// Bumps the version, rebuilds every group in `touched` once and
    /// publishes the new snapshots to readers and watchers.
    fn publish(&self, state: &mut State, touched: &BTreeSet<String>) {
        state.version += 1;
        let version = state.version;
        let mut published: HashMap<String, Arc<GroupSnapshot>> = (**self.published.load()).clone();
        for group in touched {
            let services: Vec<Arc<Service>> = state
                .groups
                .get(group)
                .map(|g| g.members.values().cloned().collect())
                .unwrap_or_default();
            let snap = if services.is_empty() {
                published.remove(group);
                Arc::new(GroupSnapshot::empty(group.clone(), version))
            } else {
                match GroupSnapshot::new(group.clone(), version, services) {
                    Ok(s) => {
                        let s = Arc::new(s);
                        published.insert(group.clone(), s.clone());
                        s
                    }
                    Err(e) => {
                        tracing::error!(error = %e, group, "catalog: ring rebuild failed; keeping the old snapshot");
                        continue;
                    }
                }
            };
            if let Some(tx) = state.watchers.get(group) {
                if tx.receiver_count() == 0 {
                    state.watchers.remove(group);
                } else {
                    tx.send_replace(snap);
                }
            }
        }
        self.published.store(Arc::new(published));
    }

    /// True when the catalog has taken `service` in with exactly this
    /// metadata: a member of its group's published snapshot, or waiting for
    /// room (refused by a count limit).
    pub fn holds(&self, service: &Service) -> bool {
        let published = self.snapshot(&service.group).is_some_and(|snap| {
            let members = snap.members();
            members
                .binary_search_by(|m| m.id.as_str().cmp(&service.id))
                .is_ok_and(|i| *members[i] == *service)
        });
        published || self.lock().waiting.get(&service.id) == Some(service)
    }

    /// The current snapshot of `group`, or `None` when it has no members.
    pub fn snapshot(&self, group: &str) -> Option<Arc<GroupSnapshot>> {
        self.published.load().get(group).cloned()
    }

    /// The current snapshot of `group`; an empty one when it has no members.
    pub fn snapshot_or_empty(&self, group: &str) -> Arc<GroupSnapshot> {
        self.snapshot(group)
            .unwrap_or_else(|| Arc::new(GroupSnapshot::empty(group, self.version())))
    }

    /// The member of `group` that owns `key`.
    pub fn match_key(&self, group: &str, key: &str) -> Result<Arc<Service>> {
        validate::group_key(group, key)?;
        let snap = self
            .snapshot(group)
            .ok_or_else(|| validate::no_members(group, None))?;
        snap.match_key(key).cloned()
    }

    /// Snapshots of every group that has members, sorted by name.
    pub fn groups(&self) -> Vec<Arc<GroupSnapshot>> {
        let mut v: Vec<_> = self.published.load().values().cloned().collect();
        v.sort_by(|a, b| a.group().cmp(b.group()));
        v
    }

    /// The catalog-wide version: the version of the latest change.
    pub fn version(&self) -> u64 {
        self.lock().version
    }

    /// Follows `group`: the receiver holds the current snapshot (empty if
    /// the group has no members) and sees every later one.
    pub fn subscribe(&self, group: &str) -> watch::Receiver<Arc<GroupSnapshot>> {
        let mut state = self.lock();
        if let Some(tx) = state.watchers.get(group) {
            return tx.subscribe();
        }
        // Forget groups nobody watches any more, so watching many names
        // one after another does not grow memory without bound.
        state.watchers.retain(|_, tx| tx.receiver_count() > 0);
        let current = self
            .snapshot(group)
            .unwrap_or_else(|| Arc::new(GroupSnapshot::empty(group, state.version)));
        let (tx, rx) = watch::channel(current);
        state.watchers.insert(group.to_string(), tx);
        rx
    }
}
