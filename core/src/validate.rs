//! What a valid argument is, worded once. Every layer of the core and
//! every front door (server, C/Go, Python) calls these checks, so that one
//! failure has one message everywhere; front doors only translate the
//! error kind (gRPC status, C code, Python class).

use crate::error::{Error, Result};
use crate::limits::MAX_WEIGHT;

/// Longest id, group or addr accepted, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Checks a required name (id, group): non-empty, at most [`MAX_NAME_LEN`]
/// bytes, no control characters. `what` names the argument.
pub fn check_name(what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        // "a name is required": not to be read as a group with no members.
        return Err(Error::invalid(format!("{what} is empty: a name is required")));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "{what} is {} bytes, the limit is {MAX_NAME_LEN}",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(format!("{what} contains a control character")));
    }
    Ok(())
}

/// Checks a service id (see [`check_name`]).
pub fn id(value: &str) -> Result<()> {
    check_name("id", value)
}

/// Checks a group name (see [`check_name`]).
pub fn group(value: &str) -> Result<()> {
    check_name("group", value)
}

/// Checks a lookup key: any non-empty string.
pub fn key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid("key is empty"));
    }
    Ok(())
}

/// Checks a group name and a lookup key, in that order.
pub fn group_key(group_name: &str, lookup_key: &str) -> Result<()> {
    group(group_name)?;
    key(lookup_key)
}

/// Checks the member count of a `match_n`: at least 1. A larger `n` than
/// the group has members is no error: the answer has every member.
pub fn count(n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::invalid("n must be at least 1"));
    }
    Ok(())
}

/// The member count of a `match_n` on the wire: a `usize` beyond `u32`
/// is clamped to `u32::MAX` (no group has that many members).
pub fn clamp_count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Checks a member's address: at most [`MAX_NAME_LEN`] bytes.
pub fn addr(value: &str) -> Result<()> {
    if value.len() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "addr is {} bytes, the limit is {MAX_NAME_LEN}",
            value.len()
        )));
    }
    Ok(())
}

/// Checks a member's weight: 1 ..= [`MAX_WEIGHT`].
pub fn weight(weight: u32) -> Result<()> {
    if weight == 0 || weight > MAX_WEIGHT {
        return Err(Error::invalid(format!(
            "weight {weight} is out of range 1..={MAX_WEIGHT}"
        )));
    }
    Ok(())
}

/// Checks the `i`-th id given to a ring by a front door (C, Go, Python):
/// the id rule of [`check_name`], named `ids[i]`, so that every front door
/// refuses the same ids (a 129-byte id included).
pub fn ring_id(i: usize, id: &str) -> Result<()> {
    check_name(&format!("ids[{i}]"), id)
}

/// The error for two members with one id.
pub fn duplicate_id(id: &str) -> Error {
    Error::invalid(format!("duplicate id {id:?}"))
}

/// The `NotFound` error for a lookup in a group with no members; `why`,
/// when known, says whether it never had any or lost its last one.
pub fn no_members(group: &str, why: Option<&str>) -> Error {
    match why {
        Some(why) => Error::not_found(format!("group {group:?} has no members: {why}")),
        None => Error::not_found(format!("group {group:?} has no members")),
    }
}

/// The `NotFound` error for a lookup in a ring with no members: a ring
/// built on its own, outside any group (a group's is [`no_members`]).
pub fn empty_ring() -> Error {
    Error::not_found("the ring has no members")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_wording() {
        assert_eq!(key("").unwrap_err().message(), "key is empty");
        assert_eq!(count(0).unwrap_err().message(), "n must be at least 1");
        assert!(count(1).is_ok());
        assert_eq!(clamp_count(usize::MAX), u32::MAX);
        assert_eq!(
            group("").unwrap_err().message(),
            "group is empty: a name is required"
        );
        assert!(id(&"a".repeat(MAX_NAME_LEN)).is_ok());
        assert!(id(&"a".repeat(MAX_NAME_LEN + 1))
            .unwrap_err()
            .message()
            .contains("the limit is 128"));
        assert!(weight(0).is_err() && weight(MAX_WEIGHT + 1).is_err() && weight(1).is_ok());
        assert_eq!(no_members("g", None).message(), "group \"g\" has no members");
    }
}
