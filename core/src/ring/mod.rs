//! Consistent-hash ring (placeholder API; the implementation lands with the
//! ring work of the foundation issue).

use crate::error::{Error, Result};

/// Name of the ring algorithm, sent to clients in every Watch snapshot.
pub const RING_ALGORITHM: &str = "xxh3-vnode-v1";

/// One member of a ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Member id.
    pub id: Box<str>,
    /// Relative share of the keys.
    pub weight: u32,
}

/// An immutable consistent-hash ring.
#[derive(Debug, Clone, Default)]
pub struct Ring {
    members: Vec<Member>,
}

impl Ring {
    /// Builds a ring from `(id, weight)` pairs; the order does not matter.
    pub fn new<'a>(members: impl IntoIterator<Item = (&'a str, u32)>) -> Result<Ring> {
        let mut members: Vec<Member> = members
            .into_iter()
            .map(|(id, weight)| Member {
                id: id.into(),
                weight,
            })
            .collect();
        members.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Ring { members })
    }

    /// Members sorted by id; `locate` returns indexes into this slice.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Index of the member that owns `key`.
    pub fn locate(&self, _key: &str) -> Result<usize> {
        Err(Error::Internal("ring not implemented".into()))
    }

    /// Indexes of up to `n` distinct members for `key`, in preference order.
    pub fn locate_n(&self, _key: &str, _n: usize) -> Result<Vec<usize>> {
        Err(Error::Internal("ring not implemented".into()))
    }
}
