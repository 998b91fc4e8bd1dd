//! Admission of a member under the count limits, and its removal.

use super::{Catalog, State, MAX_WAITING};
use crate::limits::Limit;
use crate::ring::MAX_TOTAL_WEIGHT;
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
}

/// Takes `id` out of `group`, and drops the group when it is left empty.
pub(super) fn remove_member(state: &mut State, group: &str, id: &str) {
    if let Some(g) = state.groups.get_mut(group) {
        if let Some(prev) = g.members.remove(id) {
            g.weight -= u64::from(prev.weight);
        }
        if g.members.is_empty() {
            state.groups.remove(group);
        }
    }
}
