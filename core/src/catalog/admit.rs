//! Admission of a member under the count limits, and its removal.

use super::{Catalog, State, MAX_WAITING};
use crate::limits::Limit;
use crate::ring::{MemberState, RingPlan, MAX_TOTAL_WEIGHT};
use crate::service::{Service, REGISTRY_GROUP};
use std::collections::BTreeSet;
use std::sync::Arc;

impl Catalog {
    /// Puts `s` (valid metadata) in its group unless that changes nothing
    /// or breaks a count limit; a refused `s` waits for room. `retry`: `s`
    /// was already refused once (not counted or logged again).
    pub(super) fn admit(&self, state: &mut State, s: Service, touched: &mut BTreeSet<String>, retry: bool) {
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
        // A new group had no ring.
        let before = if group.members.is_empty() {
            0
        } else {
            group.plan.memory_bytes()
        };
        plan_add(&mut group.plan, &s);
        if let Some(prev) = group.members.insert(s.id.clone(), Arc::new(s)) {
            plan_remove(&mut group.plan, &prev);
        }
        let after = group.plan.memory_bytes();
        // This group's `before` is part of the total: no underflow.
        state.ring_bytes = state.ring_bytes + after - before;
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
        let mut plan = group.map_or_else(RingPlan::new, |g| g.plan.clone());
        let before = group.map_or(0, |g| g.plan.memory_bytes());
        if let Some(p) = group.and_then(|g| g.members.get(&s.id)) {
            plan_remove(&mut plan, p);
        }
        plan_add(&mut plan, s);
        let weight = plan.weight();
        if weight > MAX_TOTAL_WEIGHT {
            return Err((
                Limit::RingWeight,
                format!(
                    "member {:?} of group {:?}: the group's total weight would be {weight}, a ring holds at most {MAX_TOTAL_WEIGHT}",
                    s.id, s.group
                ),
            ));
        }
        self.check_ring_memory(state, s, old_group, before, plan.memory_bytes())
    }

    /// Whether the rings stay within [`CatalogLimits::max_ring_memory`]
    /// when `s`'s group's ring goes from `before` to `after` bytes (and,
    /// for a move, its old group's ring loses it). A change that does not
    /// grow the rings, and the registries' own group, always fit.
    fn check_ring_memory(
        &self,
        state: &State,
        s: &Service,
        old_group: Option<&str>,
        before: usize,
        after: usize,
    ) -> Result<(), (Limit, String)> {
        if after <= before || s.group == REGISTRY_GROUP {
            return Ok(());
        }
        // A move also changes its old group's ring (either way: a leave can
        // grow the rest of a scaled ring).
        let (old_before, old_after) = old_group
            .filter(|g| *g != s.group)
            .and_then(|g| state.groups.get(g))
            .and_then(|g| g.members.get(&s.id).map(|m| (g, m)))
            .map_or((0, 0), |(g, m)| {
                let mut plan = g.plan.clone();
                plan_remove(&mut plan, m);
                (g.plan.memory_bytes(), plan.memory_bytes())
            });
        let total = (state.ring_bytes + after + old_after).saturating_sub(before + old_before);
        let limit = self.limits.max_ring_memory;
        if total > limit {
            return Err((
                Limit::RingMemory,
                format!(
                    "member {:?} of group {:?}: the rings would take {total} bytes, the limit is {limit}",
                    s.id, s.group
                ),
            ));
        }
        Ok(())
    }
}

/// Takes `id` out of `group`, and drops the group when it is left empty
/// (shrinking the maps when they are mostly empty, so that memory goes
/// back when groups go away).
pub(super) fn remove_member(state: &mut State, group: &str, id: &str) {
    if let Some(g) = state.groups.get_mut(group) {
        let before = g.plan.memory_bytes();
        if let Some(prev) = g.members.remove(id) {
            plan_remove(&mut g.plan, &prev);
        }
        let after = if g.members.is_empty() {
            0
        } else {
            g.plan.memory_bytes()
        };
        // A leave can grow the rest of a scaled ring (a finer level or a
        // larger index): the total moves either way.
        state.ring_bytes = (state.ring_bytes + after).saturating_sub(before);
        state.freed_since_trim += before.saturating_sub(after);
        if g.members.is_empty() {
            state.groups.remove(group);
            shrink(&mut state.groups);
            shrink(&mut state.group_of);
        }
    }
}

/// Counts `s` into a group's ring plan (a draining member holds no points).
fn plan_add(plan: &mut RingPlan, s: &Service) {
    plan.add_member(&s.id, s.weight, MemberState::draining(s.draining));
}

/// Counts `s`, as it was added, out of a group's ring plan.
fn plan_remove(plan: &mut RingPlan, s: &Service) {
    plan.remove_member(&s.id, s.weight, MemberState::draining(s.draining));
}

/// Gives a map's spare room back once it is three-quarters empty.
fn shrink<V>(map: &mut std::collections::HashMap<String, V>) {
    if map.capacity() > 64 && map.len() < map.capacity() / 4 {
        map.shrink_to_fit();
    }
}
