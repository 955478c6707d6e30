//! Ids: a kind prefix and a UUIDv7 in 32 lowercase hex digits (`act_01a2…`), time-ordered like the entries
//! that record them, with 74 random bits.

/// The prefix of each kind of id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// An action (`act_`).
    Action,
    /// A ledger entry (`evt_`).
    Entry,
    /// A policy decision (`dec_`).
    Decision,
    /// An AI agent's identity (`agt_`).
    Agent,
    /// A person's identity (`usr_`).
    Person,
    /// An API key (`key_`).
    Key,
    /// A gateway instance (`gw_`).
    Gateway,
}

impl IdKind {
    /// The prefix, without its underscore.
    pub const fn prefix(self) -> &'static str {
        match self {
            IdKind::Action => "act",
            IdKind::Entry => "evt",
            IdKind::Decision => "dec",
            IdKind::Agent => "agt",
            IdKind::Person => "usr",
            IdKind::Key => "key",
            IdKind::Gateway => "gw",
        }
    }
}

/// `<prefix>_` followed by a UUIDv7 in 32 lowercase hex digits.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// A fresh id of `kind`.
pub fn new(kind: IdKind) -> String {
    new_id(kind.prefix())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_sort_by_time() {
        let first = new(IdKind::Action);
        let second = new(IdKind::Action);
        assert!(first.starts_with("act_") && first.len() == 4 + 32, "{first}");
        assert!(first < second, "{first} {second}");
        assert!(new(IdKind::Entry).starts_with("evt_"));
    }
}
