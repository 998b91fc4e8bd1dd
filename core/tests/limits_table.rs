//! The limits table (`registry_core::limits`) against the modules that
//! enforce its fixed values: a bound changed in one place and not in the
//! table fails here.

use registry_core::limits::{self, Limit};
use registry_core::{catalog, ring, service, validate};

#[test]
fn fixed_limits_are_the_enforced_ones() {
    assert_eq!(limits::MAX_TOTAL_WEIGHT, ring::MAX_TOTAL_WEIGHT);
    assert_eq!(
        ring::MAX_TOTAL_WEIGHT,
        (ring::MAX_POINTS / ring::VNODES_PER_WEIGHT as usize) as u64
    );
    assert_eq!(Limit::RingWeight.default_value(), ring::MAX_TOTAL_WEIGHT);
    assert_eq!(ring::MAX_MEMBERS, limits::MAX_MEMBERS);
    assert_eq!(catalog::MAX_WAITING, limits::MAX_WAITING);
    assert_eq!(Limit::NameBytes.default_value(), validate::MAX_NAME_LEN as u64);
    assert_eq!(Limit::TagsBytes.default_value(), service::MAX_TAGS_BYTES as u64);
    assert_eq!(Limit::Weight.default_value(), u64::from(service::MAX_WEIGHT));
}

#[test]
fn fixed_limits_are_what_validation_refuses() {
    let mut s = registry_core::Service::new("a", "g", "127.0.0.1:1");
    s.weight = Limit::Weight.default_value() as u32;
    assert!(s.validate().is_ok());
    s.weight += 1;
    assert_eq!(s.exceeded_limit(), Some(Limit::Weight));
    let mut s = registry_core::Service::new("a", "g", "127.0.0.1:1");
    s.id = "x".repeat(Limit::NameBytes.default_value() as usize);
    assert!(s.validate().is_ok());
    s.id.push('x');
    assert_eq!(s.exceeded_limit(), Some(Limit::NameBytes));
    let mut s = registry_core::Service::new("a", "g", "127.0.0.1:1");
    s.tags.insert(
        "k".into(),
        "v".repeat(Limit::TagsBytes.default_value() as usize - 1),
    );
    assert!(s.validate().is_ok());
    s.tags.insert("k2".into(), String::new());
    assert_eq!(s.exceeded_limit(), Some(Limit::TagsBytes));
}
