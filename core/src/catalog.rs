//! Groups → members → an immutable ring snapshot with a version.
//!
//! Writers (the gossip event feed) go through one mutex and apply events in
//! batches, rebuilding each touched group's ring once per batch. Readers
//! load an `Arc` snapshot without taking that lock, so a lookup never waits
//! for a rebuild. Versions come from one catalog-wide counter, so a group's
//! version only grows, even across "last member left" and "first member
//! joined again".

use crate::error::{Error, Result};
use crate::ring::Ring;
use crate::service::{check_name, MemberEvent, Service};
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// The state of one group at one version: members sorted by id and the ring
/// built from them. Immutable; shared by `Arc`.
#[derive(Debug, Clone)]
pub struct GroupSnapshot {
    group: String,
    version: u64,
    services: Vec<Arc<Service>>,
    ring: Ring,
}

impl GroupSnapshot {
    /// Builds a snapshot from a group's members (any order; ids must be
    /// unique). Used by the catalog and by clients that rebuild a group
    /// locally from a Watch snapshot.
    pub fn new(group: impl Into<String>, version: u64, services: Vec<Arc<Service>>) -> Result<Self> {
        let mut services = services;
        services.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(w) = services.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(Error::invalid(format!("duplicate member id {:?}", w[0].id)));
        }
        let ring = Ring::new(services.iter().map(|s| (s.id.as_str(), s.weight)))?;
        Ok(GroupSnapshot {
            group: group.into(),
            version,
            services,
            ring,
        })
    }

    /// An empty snapshot of `group` at `version`.
    pub fn empty(group: impl Into<String>, version: u64) -> Self {
        GroupSnapshot {
            group: group.into(),
            version,
            services: Vec::new(),
            ring: Ring::default(),
        }
    }

    /// The group's name.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Version of this snapshot; a later change has a larger version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Members sorted by id (empty when the group has none).
    pub fn members(&self) -> &[Arc<Service>] {
        &self.services
    }

    /// True when the group has no members.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// The ring built from the members.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// The member that owns `key`.
    pub fn match_key(&self, key: &str) -> Result<&Arc<Service>> {
        Ok(&self.services[self.match_index(key)?])
    }

    /// Position in [`GroupSnapshot::members`] of the member that owns `key`
    /// (for callers that keep per-member state alongside the snapshot).
    pub fn match_index(&self, key: &str) -> Result<usize> {
        if key.is_empty() {
            return Err(Error::invalid("key is empty"));
        }
        if self.services.is_empty() {
            return Err(self.no_members());
        }
        self.ring.locate(key)
    }

    /// Up to `n` distinct members for `key`, in preference order; the first
    /// is always `match_key(key)`. Fewer than `n` when the group is smaller.
    pub fn match_n(&self, key: &str, n: usize) -> Result<Vec<&Arc<Service>>> {
        Ok(self
            .match_n_indexes(key, n)?
            .into_iter()
            .map(|i| &self.services[i])
            .collect())
    }

    /// Positions in [`GroupSnapshot::members`] of `match_n(key, n)`.
    pub fn match_n_indexes(&self, key: &str, n: usize) -> Result<Vec<usize>> {
        if key.is_empty() {
            return Err(Error::invalid("key is empty"));
        }
        if n == 0 {
            return Err(Error::invalid("n must be at least 1"));
        }
        if self.services.is_empty() {
            return Err(self.no_members());
        }
        self.ring.locate_n(key, n)
    }

    fn no_members(&self) -> Error {
        Error::not_found(format!("group {:?} has no members", self.group))
    }
}

/// Writer-side state, behind the catalog's mutex.
#[derive(Default)]
struct State {
    /// Catalog-wide version counter.
    version: u64,
    /// group → id → service.
    groups: HashMap<String, BTreeMap<String, Arc<Service>>>,
    /// id → group, so an id that moves to another group leaves the old one.
    group_of: HashMap<String, String>,
    /// Watch channels, one per watched group.
    watchers: HashMap<String, watch::Sender<Arc<GroupSnapshot>>>,
}

/// Every group's current snapshot, fed by membership events.
pub struct Catalog {
    state: Mutex<State>,
    published: ArcSwap<HashMap<String, Arc<GroupSnapshot>>>,
}

impl Default for Catalog {
    fn default() -> Self {
        Self::new()
    }
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Catalog {
            state: Mutex::new(State::default()),
            published: ArcSwap::from_pointee(HashMap::new()),
        }
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
        let mut state = self.lock();
        let mut touched = BTreeSet::new();
        for event in events {
            let svc = event.service();
            if let Err(e) = check_name("id", &svc.id).and_then(|_| check_name("group", &svc.group)) {
                tracing::warn!(error = %e, "catalog: ignoring event with invalid metadata");
                continue;
            }
            match event {
                MemberEvent::Joined(s) | MemberEvent::Updated(s) => {
                    if let Err(e) = s.validate() {
                        tracing::warn!(error = %e, id = %s.id, "catalog: ignoring invalid member");
                        continue;
                    }
                    if let Some(old) = state.group_of.insert(s.id.clone(), s.group.clone()) {
                        if old != s.group {
                            remove_member(&mut state, &old, &s.id);
                            touched.insert(old);
                        }
                    }
                    let members = state.groups.entry(s.group.clone()).or_default();
                    if members.get(&s.id).map(|cur| **cur != s).unwrap_or(true) {
                        touched.insert(s.group.clone());
                        members.insert(s.id.clone(), Arc::new(s));
                    }
                }
                MemberEvent::Left(s) | MemberEvent::Failed(s) => {
                    // Remove the id from the group it is in now, whatever
                    // group the event names.
                    if let Some(group) = state.group_of.remove(&s.id) {
                        remove_member(&mut state, &group, &s.id);
                        touched.insert(group);
                    }
                }
            }
        }
        if touched.is_empty() {
            return Vec::new();
        }
        state.version += 1;
        let version = state.version;
        let mut published: HashMap<String, Arc<GroupSnapshot>> = (**self.published.load()).clone();
        for group in &touched {
            let services: Vec<Arc<Service>> = state
                .groups
                .get(group)
                .map(|m| m.values().cloned().collect())
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
        touched.into_iter().collect()
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
        check_name("group", group)?;
        if key.is_empty() {
            return Err(Error::invalid("key is empty"));
        }
        let snap = self
            .snapshot(group)
            .ok_or_else(|| Error::not_found(format!("group {group:?} has no members")))?;
        snap.match_key(key).cloned()
    }

    /// Snapshots of every group that has members, sorted by name.
    pub fn groups(&self) -> Vec<Arc<GroupSnapshot>> {
        let mut v: Vec<_> = self.published.load().values().cloned().collect();
        v.sort_by(|a, b| a.group.cmp(&b.group));
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

fn remove_member(state: &mut State, group: &str, id: &str) {
    if let Some(members) = state.groups.get_mut(group) {
        members.remove(id);
        if members.is_empty() {
            state.groups.remove(group);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(id: &str, group: &str) -> Service {
        Service::new(id, group, format!("127.0.0.1:{}", 1000 + id.len()))
    }

    fn ids(snap: &GroupSnapshot) -> Vec<&str> {
        snap.members().iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn join_update_leave_publish_snapshots_with_growing_versions() {
        let cat = Catalog::new();
        assert!(cat.snapshot("web").is_none());
        cat.apply_batch([
            MemberEvent::Joined(svc("b", "web")),
            MemberEvent::Joined(svc("a", "web")),
        ]);
        let s1 = cat.snapshot("web").expect("group exists");
        assert_eq!(ids(&s1), ["a", "b"]);
        assert_eq!(s1.ring().members().len(), 2);

        let mut heavier = svc("a", "web");
        heavier.weight = 3;
        cat.apply(MemberEvent::Updated(heavier));
        let s2 = cat.snapshot("web").expect("group exists");
        assert!(s2.version() > s1.version());
        assert_eq!(s2.members()[0].weight, 3);
        // The old snapshot a reader holds is untouched.
        assert_eq!(s1.members()[0].weight, 1);

        cat.apply(MemberEvent::Left(svc("a", "web")));
        cat.apply(MemberEvent::Failed(svc("b", "web")));
        assert!(cat.snapshot("web").is_none());
        assert!(cat.groups().is_empty());
        let empty = cat.snapshot_or_empty("web");
        assert!(empty.is_empty() && empty.version() > s2.version());
    }

    #[test]
    fn repeated_identical_event_changes_nothing() {
        let cat = Catalog::new();
        assert_eq!(cat.apply_batch([MemberEvent::Joined(svc("a", "g"))]), ["g"]);
        let v = cat.version();
        assert!(cat.apply_batch([MemberEvent::Joined(svc("a", "g"))]).is_empty());
        assert!(cat.apply_batch([MemberEvent::Left(svc("zz", "g"))]).is_empty());
        assert_eq!(cat.version(), v);
    }

    #[test]
    fn member_moving_group_leaves_the_old_one() {
        let cat = Catalog::new();
        cat.apply(MemberEvent::Joined(svc("a", "g1")));
        cat.apply(MemberEvent::Joined(svc("b", "g1")));
        let touched = cat.apply_batch([MemberEvent::Updated(svc("a", "g2"))]);
        assert_eq!(touched, ["g1", "g2"]);
        assert_eq!(ids(&cat.snapshot("g1").expect("g1")), ["b"]);
        assert_eq!(ids(&cat.snapshot("g2").expect("g2")), ["a"]);
        // A leave naming the stale group still removes the id where it is.
        cat.apply(MemberEvent::Left(svc("a", "g1")));
        assert!(cat.snapshot("g2").is_none());
        assert_eq!(ids(&cat.snapshot("g1").expect("g1")), ["b"]);
    }

    #[test]
    fn invalid_events_change_nothing() {
        let cat = Catalog::new();
        cat.apply(MemberEvent::Joined(svc("a", "g")));
        let before = cat.snapshot("g").expect("g");
        let mut zero = svc("b", "g");
        zero.weight = 0;
        let touched = cat.apply_batch([
            MemberEvent::Joined(zero),
            MemberEvent::Joined(svc("", "g")),
            MemberEvent::Joined(svc("c", "")),
        ]);
        assert!(touched.is_empty());
        let after = cat.snapshot("g").expect("g");
        assert_eq!(after.version(), before.version());
        assert_eq!(ids(&after), ["a"]);
    }

    #[test]
    fn subscribers_see_every_change_including_the_empty_group() {
        let cat = Catalog::new();
        let mut rx = cat.subscribe("g");
        assert!(rx.borrow_and_update().is_empty());
        cat.apply(MemberEvent::Joined(svc("a", "g")));
        assert!(rx.has_changed().expect("sender alive"));
        assert_eq!(ids(&rx.borrow_and_update()), ["a"]);
        cat.apply(MemberEvent::Joined(svc("x", "other")));
        assert!(!rx.has_changed().expect("sender alive"));
        cat.apply(MemberEvent::Left(svc("a", "g")));
        let last = rx.borrow_and_update().clone();
        assert!(last.is_empty());
        assert_eq!(last.group(), "g");
        // A second subscriber starts from the current state.
        let rx2 = cat.subscribe("g");
        assert_eq!(rx2.borrow().version(), last.version());
    }

    #[test]
    fn watchers_of_abandoned_groups_are_forgotten() {
        let cat = Catalog::new();
        for i in 0..100 {
            drop(cat.subscribe(&format!("g{i}")));
        }
        let kept = cat.subscribe("kept");
        let _again = cat.subscribe("other");
        assert_eq!(cat.lock().watchers.len(), 2);
        drop(kept);
    }

    #[test]
    fn lookups_reject_bad_input_and_empty_groups() {
        let cat = Catalog::new();
        assert!(matches!(cat.match_key("", "k"), Err(Error::InvalidArgument(_))));
        assert!(matches!(cat.match_key("g", ""), Err(Error::InvalidArgument(_))));
        assert!(matches!(cat.match_key("g", "k"), Err(Error::NotFound(m)) if m.contains("\"g\"")));
        let empty = GroupSnapshot::empty("g", 1);
        assert!(matches!(empty.match_key("k"), Err(Error::NotFound(_))));
        assert!(matches!(empty.match_n("k", 0), Err(Error::InvalidArgument(_))));
        let dup = GroupSnapshot::new("g", 1, vec![Arc::new(svc("a", "g")), Arc::new(svc("a", "g"))]);
        assert!(matches!(dup, Err(Error::InvalidArgument(m)) if m.contains("duplicate")));
    }
}
