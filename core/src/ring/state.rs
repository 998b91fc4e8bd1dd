//! A ring member's state: serving its share of the keys, or draining.

/// What a ring member does with its share of the keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberState {
    /// It owns its share of the keys (the usual state).
    #[default]
    Serving,
    /// It is listed but owns no keys: the ring answers exactly as if it had
    /// left, so its leave then moves no key, and serving again gives it back
    /// exactly the keys it had.
    Draining,
}

impl MemberState {
    /// The state byte of the checksum ([`super::checksum`]): 0 serving, 1 draining.
    pub fn byte(self) -> u8 {
        match self {
            MemberState::Serving => super::checksum::STATE_SERVING,
            MemberState::Draining => super::checksum::STATE_DRAINING,
        }
    }

    /// The state for a `draining` flag.
    pub fn draining(draining: bool) -> MemberState {
        if draining {
            MemberState::Draining
        } else {
            MemberState::Serving
        }
    }

    /// True for [`MemberState::Draining`].
    pub fn is_draining(self) -> bool {
        self == MemberState::Draining
    }
}
