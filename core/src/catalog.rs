//! Groups → members → an immutable ring snapshot with a version.
//!
//! Writers (the gossip event feed) go through one mutex and apply events in
//! batches, rebuilding each touched group's ring once per batch. Readers
//! load an `Arc` snapshot without taking that lock, so a lookup never waits
//! for a rebuild. Versions come from one catalog-wide counter, so a group's
//! version only grows, even across "last member left" and "first member
//! joined again".
//!
//! Count limits ([`CatalogLimits`]: groups, members per group, and the
//! ring's own cap on a group's total weight) are enforced here, where
//! membership enters: an event that would exceed one is refused, counted
//! in [`Catalog::limit_rejections`], logged at most once a minute per
//! limit, and changes nothing. The refused member waits (latest metadata,
//! at most [`MAX_WAITING`] of them) and is admitted, in id order, as soon
//! as a change makes room (a leave, a move, a lighter weight); its own
//! leave forgets it.

use crate::error::{Error, Result};
use crate::limits::{CatalogLimits, Limit, LimitCounters, RefusalLog};
use crate::ring::{Ring, MAX_TOTAL_WEIGHT};
use crate::service::{check_name, MemberEvent, Service, REGISTRY_GROUP};
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

/// Most refused members remembered to be admitted when room frees; one
/// refused beyond this is admitted only when it announces itself again.
pub const MAX_WAITING: usize = 16_384;

/// One group's members and their total weight (kept for the ring's cap).
#[derive(Default)]
struct Group {
    /// id → service.
    members: BTreeMap<String, Arc<Service>>,
    /// Sum of the members' weights.
    weight: u64,
}

/// Writer-side state, behind the catalog's mutex.
#[derive(Default)]
struct State {
    /// Catalog-wide version counter.
    version: u64,
    /// group → its members.
    groups: HashMap<String, Group>,
    /// id → group, so an id that moves to another group leaves the old one.
    group_of: HashMap<String, String>,
    /// Watch channels, one per watched group.
    watchers: HashMap<String, watch::Sender<Arc<GroupSnapshot>>>,
    /// Members refused by a count limit, by id, with their latest metadata.
    waiting: BTreeMap<String, Service>,
    /// Rate limit of the refusal warnings.
    refusals: RefusalLog,
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
            let svc = event.service();
            if let Err(e) = check_name("id", &svc.id).and_then(|_| check_name("group", &svc.group)) {
                tracing::warn!(error = %e, "catalog: ignoring event with invalid metadata");
                continue;
            }
            match event {
                MemberEvent::Joined(s) | MemberEvent::Updated(s) => {
                    if let Err(e) = s.validate() {
                        if let Some(limit) = s.exceeded_limit() {
                            self.rejections.record(limit);
                        }
                        tracing::warn!(error = %e, id = %s.id, "catalog: ignoring invalid member");
                        continue;
                    }
                    self.admit(state, s, &mut touched, false);
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
        state.version += 1;
        let version = state.version;
        let mut published: HashMap<String, Arc<GroupSnapshot>> = (**self.published.load()).clone();
        for group in &touched {
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
        touched.into_iter().collect()
    }

    /// Puts `s` (valid metadata) in its group unless that changes nothing
    /// or breaks a count limit; a refused `s` waits for room. `retry`: `s`
    /// was already refused once (not counted or logged again).
    fn admit(&self, state: &mut State, s: Service, touched: &mut BTreeSet<String>, retry: bool) {
        let old_group = state.group_of.get(&s.id).cloned();
        let same_group = old_group.as_deref() == Some(s.group.as_str());
        let current = state.groups.get(&s.group).and_then(|g| g.members.get(&s.id));
        if same_group && current.is_some_and(|cur| **cur == s) {
            state.waiting.remove(&s.id);
            return;
        }
        if let Err((limit, why)) = self.check_room(state, &s, old_group.as_deref()) {
            if !retry {
                self.rejections.record(limit);
                state.refusals.refused(limit, &why);
            }
            if state.waiting.len() < MAX_WAITING || state.waiting.contains_key(&s.id) {
                state.waiting.insert(s.id.clone(), s);
            }
            return;
        }
        state.waiting.remove(&s.id);
        if let Some(old) = old_group.filter(|_| !same_group) {
            remove_member(state, &old, &s.id);
            touched.insert(old);
        }
        state.group_of.insert(s.id.clone(), s.group.clone());
        touched.insert(s.group.clone());
        let group = state.groups.entry(s.group.clone()).or_default();
        group.weight += u64::from(s.weight);
        if let Some(prev) = group.members.insert(s.id.clone(), Arc::new(s)) {
            group.weight -= u64::from(prev.weight);
        }
    }

    /// Whether `s` fits: its group exists or another may be created, the
    /// group has room for another member, and its ring stays under
    /// [`MAX_TOTAL_WEIGHT`]. The error names the limit and explains it.
    fn check_room(&self, state: &State, s: &Service, old_group: Option<&str>) -> Result<(), (Limit, String)> {
        let same_group = old_group == Some(s.group.as_str());
        let group = state.groups.get(&s.group);
        match group {
            None => {
                // Moving out of a group it is alone in frees that group.
                let frees = old_group
                    .and_then(|g| state.groups.get(g))
                    .is_some_and(|g| g.members.len() == 1);
                let groups = state.groups.len() - usize::from(frees);
                if groups >= self.limits.max_groups {
                    return Err((
                        Limit::Groups,
                        format!(
                            "member {:?} of new group {:?}: {groups} groups exist, the limit is {}",
                            s.id, s.group, self.limits.max_groups
                        ),
                    ));
                }
            }
            // The registries' own group is never capped by count: clients
            // find every registry through it.
            Some(g)
                if !same_group
                    && s.group != REGISTRY_GROUP
                    && g.members.len() >= self.limits.members_per_group() =>
            {
                return Err((
                    Limit::MembersPerGroup,
                    format!(
                        "member {:?} of group {:?}: the group has {} members, the limit is {}",
                        s.id,
                        s.group,
                        g.members.len(),
                        self.limits.members_per_group()
                    ),
                ));
            }
            Some(_) => {}
        }
        let prev = group
            .and_then(|g| g.members.get(&s.id))
            .map_or(0, |p| u64::from(p.weight));
        let weight = group.map_or(0, |g| g.weight) - prev + u64::from(s.weight);
        if weight > MAX_TOTAL_WEIGHT {
            return Err((
                Limit::RingWeight,
                format!(
                    "member {:?} of group {:?}: the group's total weight would be {weight}, a ring holds at most {MAX_TOTAL_WEIGHT}",
                    s.id, s.group
                ),
            ));
        }
        Ok(())
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
    if let Some(g) = state.groups.get_mut(group) {
        if let Some(prev) = g.members.remove(id) {
            g.weight -= u64::from(prev.weight);
        }
        if g.members.is_empty() {
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

    fn limited(max_groups: usize, max_members_per_group: usize) -> Catalog {
        Catalog::with_limits(CatalogLimits {
            max_groups,
            max_members_per_group,
        })
    }

    #[test]
    fn a_full_group_refuses_a_new_member_and_a_leave_admits_it() {
        let cat = limited(10, 2);
        cat.apply_batch([
            MemberEvent::Joined(svc("a", "g")),
            MemberEvent::Joined(svc("b", "g")),
        ]);
        let before = cat.snapshot("g").expect("g");
        let touched = cat.apply_batch([MemberEvent::Joined(svc("c", "g"))]);
        assert!(touched.is_empty());
        assert_eq!(cat.limit_rejections().get(Limit::MembersPerGroup), 1);
        let after = cat.snapshot("g").expect("g");
        assert_eq!(ids(&after), ["a", "b"]);
        assert_eq!(after.version(), before.version());
        assert_eq!(cat.waiting(), 1);
        // Existing members keep working: an update of one is applied.
        let mut heavier = svc("a", "g");
        heavier.weight = 2;
        cat.apply(MemberEvent::Updated(heavier));
        assert_eq!(cat.snapshot("g").expect("g").members()[0].weight, 2);
        assert_eq!(cat.limit_rejections().get(Limit::MembersPerGroup), 1);
        // A leave frees a slot: the waiting member gets it at once.
        let touched = cat.apply_batch([MemberEvent::Left(svc("b", "g"))]);
        assert_eq!(touched, ["g"]);
        assert_eq!(ids(&cat.snapshot("g").expect("g")), ["a", "c"]);
        assert_eq!(cat.waiting(), 0);
        assert_eq!(cat.limit_rejections().get(Limit::MembersPerGroup), 1);
    }

    #[test]
    fn the_registry_group_is_not_capped_by_count() {
        let cat = limited(10, 1);
        cat.apply_batch([
            MemberEvent::Joined(svc("r1", REGISTRY_GROUP)),
            MemberEvent::Joined(svc("r2", REGISTRY_GROUP)),
        ]);
        assert_eq!(
            ids(&cat.snapshot(REGISTRY_GROUP).expect("registries")),
            ["r1", "r2"]
        );
        assert_eq!(cat.limit_rejections().get(Limit::MembersPerGroup), 0);
    }

    #[test]
    fn a_member_moving_out_of_a_full_group_makes_room() {
        let cat = limited(10, 1);
        cat.apply(MemberEvent::Joined(svc("a", "g")));
        cat.apply(MemberEvent::Joined(svc("b", "g")));
        assert_eq!(cat.waiting(), 1);
        let touched = cat.apply_batch([MemberEvent::Updated(svc("a", "g2"))]);
        assert_eq!(touched, ["g", "g2"]);
        assert_eq!(ids(&cat.snapshot("g").expect("g")), ["b"]);
        assert_eq!(ids(&cat.snapshot("g2").expect("g2")), ["a"]);
        assert_eq!(cat.waiting(), 0);
    }

    #[test]
    fn a_refused_member_that_leaves_is_forgotten() {
        let cat = limited(10, 1);
        cat.apply(MemberEvent::Joined(svc("a", "g")));
        cat.apply(MemberEvent::Joined(svc("b", "g")));
        cat.apply(MemberEvent::Joined(svc("b", "g")));
        assert_eq!(cat.limit_rejections().get(Limit::MembersPerGroup), 2);
        assert_eq!(cat.waiting(), 1);
        // Both are taken in: one published, one waiting; not with other metadata.
        assert!(cat.holds(&svc("a", "g")) && cat.holds(&svc("b", "g")));
        let mut heavier = svc("b", "g");
        heavier.weight = 3;
        assert!(!cat.holds(&heavier));
        assert!(!cat.holds(&svc("c", "g")) && !cat.holds(&svc("a", "g2")));
        assert!(cat.apply_batch([MemberEvent::Failed(svc("b", "g"))]).is_empty());
        assert!(!cat.holds(&svc("b", "g")));
        assert_eq!(cat.waiting(), 0);
        cat.apply(MemberEvent::Left(svc("a", "g")));
        assert!(cat.snapshot("g").is_none());
    }

    #[test]
    fn the_group_limit_refuses_new_groups_only() {
        let cat = limited(2, 10);
        cat.apply_batch([
            MemberEvent::Joined(svc("a", "g1")),
            MemberEvent::Joined(svc("b", "g2")),
            MemberEvent::Joined(svc("c", "g3")),
            MemberEvent::Joined(svc("d", "g1")),
        ]);
        assert_eq!(cat.groups().len(), 2);
        assert!(cat.snapshot("g3").is_none());
        assert_eq!(ids(&cat.snapshot("g1").expect("g1")), ["a", "d"]);
        assert_eq!(cat.limit_rejections().get(Limit::Groups), 1);
        // A member alone in its group may move to a new group (the count
        // stays the same), but not out of a group it shares.
        cat.apply(MemberEvent::Updated(svc("b", "g4")));
        assert!(cat.snapshot("g2").is_none());
        assert_eq!(ids(&cat.snapshot("g4").expect("g4")), ["b"]);
        cat.apply(MemberEvent::Updated(svc("a", "g5")));
        assert_eq!(ids(&cat.snapshot("g1").expect("g1")), ["a", "d"]);
        assert_eq!(cat.limit_rejections().get(Limit::Groups), 2);
        // The last member of g4 leaves: the waiting are tried in id order,
        // so a's move gets the free group and c (waiting for g3) waits on.
        cat.apply(MemberEvent::Left(svc("b", "g4")));
        let names: Vec<String> = cat.groups().iter().map(|g| g.group().to_string()).collect();
        assert_eq!(names, ["g1", "g5"]);
        assert_eq!(ids(&cat.snapshot("g1").expect("g1")), ["d"]);
        assert_eq!(cat.waiting(), 1);
        assert_eq!(cat.limit_rejections().get(Limit::Groups), 2);
    }

    #[test]
    fn the_ring_weight_cap_refuses_instead_of_failing() {
        let weighing = |id: &str, weight: u32| {
            let mut s = svc(id, "g");
            s.weight = weight;
            s
        };
        let cat = Catalog::new();
        cat.apply(MemberEvent::Joined(svc("a", "g")));
        // Pretend the group is one short of the cap (a real one would need
        // a 285 MB ring).
        cat.lock().groups.get_mut("g").expect("g").weight = MAX_TOTAL_WEIGHT - 1;
        let v = cat.version();
        assert!(cat
            .apply_batch([MemberEvent::Joined(weighing("b", 2))])
            .is_empty());
        assert_eq!(cat.version(), v);
        assert_eq!(cat.limit_rejections().get(Limit::RingWeight), 1);
        cat.apply(MemberEvent::Joined(weighing("c", 1)));
        // An update that would go over is refused; the member keeps its
        // old weight. (c's join above found no room for b either.)
        assert!(cat
            .apply_batch([MemberEvent::Updated(weighing("a", 2))])
            .is_empty());
        assert_eq!(cat.limit_rejections().get(Limit::RingWeight), 2);
        assert_eq!(ids(&cat.snapshot("g").expect("g")), ["a", "c"]);
        assert_eq!(cat.snapshot("g").expect("g").members()[0].weight, 1);
        // c leaves: a's update fits now (id order), b still does not.
        cat.apply(MemberEvent::Left(svc("c", "g")));
        let snap = cat.snapshot("g").expect("g");
        assert_eq!(ids(&snap), ["a"]);
        assert_eq!(snap.members()[0].weight, 2);
        assert_eq!(cat.waiting(), 1);
        assert_eq!(cat.lock().groups["g"].weight, MAX_TOTAL_WEIGHT);
    }

    #[test]
    fn invalid_metadata_is_counted_by_limit() {
        let cat = Catalog::new();
        let mut heavy = svc("a", "g");
        heavy.weight = crate::service::MAX_WEIGHT + 1;
        let mut tagged = svc("b", "g");
        tagged
            .tags
            .insert("k".into(), "v".repeat(crate::service::MAX_TAGS_BYTES));
        let mut far = svc("c", "g");
        far.addr = "x".repeat(crate::service::MAX_NAME_LEN + 1);
        assert!(cat
            .apply_batch([
                MemberEvent::Joined(heavy),
                MemberEvent::Joined(tagged),
                MemberEvent::Joined(far),
            ])
            .is_empty());
        for l in [Limit::Weight, Limit::TagsBytes, Limit::NameBytes] {
            assert_eq!(cat.limit_rejections().get(l), 1, "{l:?}");
        }
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
