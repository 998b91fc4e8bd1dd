//! A registered service instance and the membership events about it.

use crate::error::Result;
use crate::limits::Limit;
use std::collections::BTreeMap;

/// Group that every registry server joins; clients find registries in it.
pub const REGISTRY_GROUP: &str = "registry-group";

pub use crate::limits::{MAX_TAGS_BYTES, MAX_WEIGHT};
use crate::validate;
pub use crate::validate::{check_name, MAX_NAME_LEN};

/// One instance of a service group, as registered and as discovered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Service {
    /// Unique id of the instance within the cluster.
    pub id: String,
    /// Group the instance belongs to.
    pub group: String,
    /// Address clients use to reach the instance: `host:port` (an IP or a
    /// DNS name, port 1 to 65535; see [`validate::addr`]).
    pub addr: String,
    /// Relative share of keys (1 ..= [`MAX_WEIGHT`]).
    pub weight: u32,
    /// Free-form metadata, at most [`MAX_TAGS_BYTES`] in all, no control
    /// characters (see [`validate::tags`]).
    pub tags: BTreeMap<String, String>,
    /// Draining: the instance stays listed but owns no keys, so that it can
    /// hand its keys' state to their new owners and then leave without
    /// moving any key. Serving again gives it back exactly its keys.
    pub draining: bool,
}

impl Service {
    /// A service of weight 1 with no tags.
    pub fn new(id: impl Into<String>, group: impl Into<String>, addr: impl Into<String>) -> Self {
        Service {
            id: id.into(),
            group: group.into(),
            addr: addr.into(),
            weight: 1,
            tags: BTreeMap::new(),
            draining: false,
        }
    }

    /// Checks every field against the limits; the error names the field.
    pub fn validate(&self) -> Result<()> {
        validate::id(&self.id)?;
        validate::group(&self.group)?;
        validate::addr(&self.addr)?;
        validate::weight(self.weight)?;
        validate::tags(&self.tags)
    }

    /// Total size of the tags (keys plus values), in bytes.
    pub fn tag_bytes(&self) -> usize {
        self.tags.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// The size or range limit this service breaks, if any, to count a
    /// refusal by [`Limit`]; `None` when it breaks none (it may still fail
    /// [`Service::validate`] for an empty name or a control character).
    pub fn exceeded_limit(&self) -> Option<Limit> {
        if [&self.id, &self.group, &self.addr]
            .iter()
            .any(|s| s.len() > MAX_NAME_LEN)
        {
            Some(Limit::NameBytes)
        } else if self.weight == 0 || self.weight > MAX_WEIGHT {
            Some(Limit::Weight)
        } else if self.tag_bytes() > MAX_TAGS_BYTES {
            Some(Limit::TagsBytes)
        } else {
            None
        }
    }
}

/// A change in cluster membership, as seen by one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    /// A member appeared, with its full metadata.
    Joined(Service),
    /// A live member changed its metadata (weight, addr, tags, group).
    Updated(Service),
    /// A member left gracefully; carries its last known metadata.
    Left(Service),
    /// A member stopped answering and was declared down.
    Failed(Service),
}

impl MemberEvent {
    /// The service the event is about.
    pub fn service(&self) -> &Service {
        match self {
            MemberEvent::Joined(s)
            | MemberEvent::Updated(s)
            | MemberEvent::Left(s)
            | MemberEvent::Failed(s) => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn validate_names_the_bad_field() {
        let ok = Service::new("a", "g", "127.0.0.1:1");
        assert!(ok.validate().is_ok());
        let mut s = ok.clone();
        s.group.clear();
        assert_eq!(
            s.validate(),
            Err(Error::invalid("group is empty: a name is required"))
        );
        let mut s = ok.clone();
        s.weight = 0;
        assert!(matches!(s.validate(), Err(Error::InvalidArgument(m)) if m.contains("weight")));
        let mut s = ok.clone();
        s.tags.insert("k".into(), "v".repeat(MAX_TAGS_BYTES));
        assert!(matches!(s.validate(), Err(Error::InvalidArgument(m)) if m.contains("tags")));
        let mut s = ok;
        s.id = "x".repeat(MAX_NAME_LEN + 1);
        assert!(matches!(s.validate(), Err(Error::InvalidArgument(m)) if m.contains("id")));
    }

    #[test]
    fn exceeded_limit_names_the_limit() {
        let ok = Service::new("a", "g", "127.0.0.1:1");
        assert_eq!(ok.exceeded_limit(), None);
        let mut s = ok.clone();
        s.addr = "x".repeat(MAX_NAME_LEN + 1);
        assert_eq!(s.exceeded_limit(), Some(Limit::NameBytes));
        let mut s = ok.clone();
        s.weight = MAX_WEIGHT + 1;
        assert_eq!(s.exceeded_limit(), Some(Limit::Weight));
        let mut s = ok.clone();
        s.tags.insert("k".into(), "v".repeat(MAX_TAGS_BYTES));
        assert_eq!(s.exceeded_limit(), Some(Limit::TagsBytes));
        let mut s = ok;
        s.id.clear();
        assert_eq!(s.exceeded_limit(), None);
        assert!(s.validate().is_err());
    }
}
