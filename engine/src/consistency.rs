//! Consistency levels (DESIGN.md section 7), as Group Replication names them.
//!
//! A level says what a transaction waits for before it runs and after it commits:
//!
//! | level | waits |
//! |---|---|
//! | `EVENTUAL` | nothing |
//! | `BEFORE_ON_PRIMARY_FAILOVER` | on a newly elected primary, until everything ordered before the election is applied here |
//! | `BEFORE` | a sync point through the order, then until everything up to it is applied here |
//!
//! `BEFORE` includes `BEFORE_ON_PRIMARY_FAILOVER`'s guarantee. `AFTER` and
//! `BEFORE_AND_AFTER` (a commit returns only once every ONLINE member applied it) are
//! recognised and refused with a clear error: the acknowledgements from the other members
//! they need are not built. The waits themselves live with the member (`member`); this
//! module owns the names.

use std::fmt;
use std::str::FromStr;

/// A consistency level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Consistency {
    /// No wait.
    Eventual,
    /// A newly elected primary holds transactions until it has applied the backlog of
    /// the old one (Group Replication's default since 8.0.14).
    #[default]
    BeforeOnPrimaryFailover,
    /// Every transaction first waits until everything ordered before it is applied here.
    Before,
}

/// The levels this build knows by name, in Group Replication's spelling.
pub const LEVEL_NAMES: [&str; 5] = [
    "EVENTUAL",
    "BEFORE_ON_PRIMARY_FAILOVER",
    "BEFORE",
    "AFTER",
    "BEFORE_AND_AFTER",
];

impl Consistency {
    /// Whether a newly elected primary holds this level's transactions.
    pub fn holds_on_failover(self) -> bool {
        !matches!(self, Consistency::Eventual)
    }

    /// Whether a transaction first passes a sync point.
    pub fn syncs_before(self) -> bool {
        matches!(self, Consistency::Before)
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Consistency::Eventual => "EVENTUAL",
            Consistency::BeforeOnPrimaryFailover => "BEFORE_ON_PRIMARY_FAILOVER",
            Consistency::Before => "BEFORE",
        })
    }
}

impl FromStr for Consistency {
    type Err = String;

    fn from_str(text: &str) -> Result<Consistency, String> {
        match text.trim().to_ascii_uppercase().as_str() {
            "EVENTUAL" => Ok(Consistency::Eventual),
            "BEFORE_ON_PRIMARY_FAILOVER" => Ok(Consistency::BeforeOnPrimaryFailover),
            "BEFORE" => Ok(Consistency::Before),
            level @ ("AFTER" | "BEFORE_AND_AFTER") => Err(format!(
                "consistency level {level} is not available in this build (it needs every \
                 member's acknowledgement of each commit); use EVENTUAL, \
                 BEFORE_ON_PRIMARY_FAILOVER or BEFORE"
            )),
            _ => Err(format!(
                "{text:?} is not a consistency level (one of {})",
                LEVEL_NAMES.join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_in_any_case_and_round_trip() {
        for level in [
            Consistency::Eventual,
            Consistency::BeforeOnPrimaryFailover,
            Consistency::Before,
        ] {
            assert_eq!(level.to_string().parse::<Consistency>(), Ok(level));
            assert_eq!(
                level.to_string().to_lowercase().parse::<Consistency>(),
                Ok(level)
            );
        }
        assert_eq!(Consistency::default(), Consistency::BeforeOnPrimaryFailover);
    }

    #[test]
    fn unknown_and_unbuilt_levels_are_refused_by_name() {
        let error = "SOMETIMES".parse::<Consistency>().unwrap_err();
        assert!(
            error.contains("SOMETIMES") && error.contains("BEFORE_AND_AFTER"),
            "{error}"
        );
        let error = "after".parse::<Consistency>().unwrap_err();
        assert!(error.contains("AFTER is not available"), "{error}");
    }
}
