//! Modes, roles and the primary election (DESIGN.md section 8), as state every member
//! computes alike from the total order.
//!
//! The group's mode (single- or multi-primary), its primary and every member's version
//! and weight change only at delivered entries: a configuration (`Reconfigure`), or a
//! [`RoleOp`] that went through the order. Every member therefore knows, for each seqno,
//! which origins may write there, and certification aborts a transaction whose origin was
//! not writable at its seqno, so a deposed primary never commits.
//!
//! - A member announces its own facts ([`RoleOp::Announce`]: version, weight and the mode
//!   it was configured with) once it is in the configuration. The first announcement of
//!   a group sets the mode; later ones only add their facts (a member configured for the
//!   other mode follows the group's, as the log says why).
//! - Version compatibility: an announced version below the lowest of the compatible
//!   members is refused ([`RoleEvent::Incompatible`]; the member leaves). In multi-primary
//!   mode only the lowest-version members are writable; a newer member is read-only until
//!   the older ones leave.
//! - Election ([`Roles::elect`]), with no extra messages: among the compatible announced
//!   members, lowest version, then highest weight, then lowest member UUID. It runs when
//!   the primary leaves the configuration, when single-primary mode has no primary yet,
//!   and for `SWITCH-MODE SINGLE` without a member.
//! - `SET-PRIMARY` and `SWITCH-MODE` are ordered operations: transactions of the old
//!   primary ordered before the operation finish, those after it abort.
//!
//! This module must never read a clock, do IO or look at anything but its inputs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use tutti_net::gcs::MemberId;
use tutti_storage::Seqno;

use crate::group::format_uuid;

/// A member's version: what the members table shows and the election compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major.
    pub major: u16,
    /// Minor.
    pub minor: u16,
    /// Patch.
    pub patch: u16,
}

impl Version {
    /// This build's version (the package version).
    pub fn of_build() -> Version {
        env!("CARGO_PKG_VERSION")
            .parse()
            .expect("the package version is major.minor.patch")
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for Version {
    type Err = String;

    fn from_str(text: &str) -> Result<Version, String> {
        let bad = || format!("{text:?} is not a version of the form major.minor.patch");
        let mut parts = text.trim().split('.').map(str::parse::<u16>);
        let (Some(Ok(major)), Some(Ok(minor)), Some(Ok(patch)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        Ok(Version {
            major,
            minor,
            patch,
        })
    }
}

/// The group's mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// One elected primary takes writes; the others are read-only.
    SinglePrimary,
    /// Every compatible member takes writes.
    MultiPrimary,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::SinglePrimary => "SINGLE-PRIMARY",
            Mode::MultiPrimary => "MULTI-PRIMARY",
        })
    }
}

/// What a member announces about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Facts {
    /// Its version.
    pub version: Version,
    /// `member_weight`, 0..=100.
    pub weight: u8,
}

/// An ordered operation on roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RoleOp {
    /// A member's own facts, and the mode it was configured with.
    Announce {
        /// The member.
        member: MemberId,
        /// Its incarnation, and the seqno of the configuration it announces in: a member
        /// life announces once per configuration that lacks its facts, so no two
        /// announcements are the same bytes (a restarted member replaying its log may
        /// announce again in an old configuration; the facts are the same).
        incarnation: u64,
        /// See `incarnation`.
        config_seqno: Seqno,
        /// Its version and weight.
        facts: Facts,
        /// Its configured `single_primary_mode`.
        single_primary: bool,
    },
    /// `GROUP SET-PRIMARY <uuid>`.
    SetPrimary(MemberId),
    /// `GROUP SWITCH-MODE SINGLE [uuid]`.
    SwitchToSingle(Option<MemberId>),
    /// `GROUP SWITCH-MODE MULTI`.
    SwitchToMulti,
}

/// Why a member became primary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Why {
    /// Elected (no primary, or the primary left).
    Elected,
    /// Named by `SET-PRIMARY` or `SWITCH-MODE SINGLE <uuid>`.
    Appointed,
}

/// What one delivered entry changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleEvent {
    /// The group's mode was set or switched.
    Mode(Mode),
    /// A new primary, from this seqno on.
    Primary {
        /// The primary.
        member: MemberId,
        /// Elected or appointed.
        why: Why,
    },
    /// Single-primary mode and nobody can be primary (no compatible member announced).
    NoPrimary,
    /// A member announced a version below the group's lowest: it may not take part.
    Incompatible {
        /// The member.
        member: MemberId,
        /// Its version.
        version: Version,
        /// The group's lowest version.
        lowest: Version,
    },
    /// An operation that could not apply, with the reason (the same on every member).
    Refused {
        /// The operation.
        op: RoleOp,
        /// Why.
        reason: String,
    },
}

/// The replicated role state of a group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roles {
    mode: Option<Mode>,
    primary: Option<MemberId>,
    /// The seqno at which the current primary took over.
    primary_since: Seqno,
    /// The configuration, and the seqno it was ordered at.
    members: Vec<MemberId>,
    config_seqno: Seqno,
    /// When each member of the configuration entered it (its first configuration).
    joined: BTreeMap<MemberId, Seqno>,
    facts: BTreeMap<MemberId, Facts>,
    incompatible: BTreeSet<MemberId>,
}

impl Roles {
    /// The state of a group before its first entry.
    pub fn new() -> Roles {
        Roles::default()
    }

    /// The mode, once the first member announced.
    pub fn mode(&self) -> Option<Mode> {
        self.mode
    }

    /// The primary (single-primary mode only).
    pub fn primary(&self) -> Option<MemberId> {
        self.primary
    }

    /// The seqno at which the current primary took over.
    pub fn primary_since(&self) -> Seqno {
        self.primary_since
    }

    /// A member's announced facts.
    pub fn facts(&self, member: MemberId) -> Option<Facts> {
        self.facts.get(&member).copied()
    }

    /// The configuration.
    pub fn members(&self) -> &[MemberId] {
        &self.members
    }

    /// The seqno of the current configuration.
    pub fn config_seqno(&self) -> Seqno {
        self.config_seqno
    }

    /// Whether `member` is in the configuration.
    pub fn is_member(&self, member: MemberId) -> bool {
        self.members.contains(&member)
    }

    /// Whether `member` was refused for its version.
    pub fn is_incompatible(&self, member: MemberId) -> bool {
        self.incompatible.contains(&member)
    }

    /// The lowest version among the compatible members of the configuration.
    pub fn lowest_version(&self) -> Option<Version> {
        self.candidates().map(|(_, facts)| facts.version).min()
    }

    /// Whether a transaction of `origin` may commit at the current position.
    pub fn writable(&self, origin: MemberId) -> bool {
        match self.mode {
            None => false,
            Some(Mode::SinglePrimary) => self.primary == Some(origin),
            Some(Mode::MultiPrimary) => {
                self.candidates().any(|(member, _)| member == origin)
                    && self.facts.get(&origin).map(|facts| facts.version) == self.lowest_version()
            }
        }
    }

    /// Why `origin` may not write here, for a client (`None` when it may).
    pub fn read_only_reason(&self, origin: MemberId) -> Option<String> {
        if self.writable(origin) {
            return None;
        }
        Some(match self.mode {
            None => "the group has not settled its mode yet".to_owned(),
            Some(Mode::SinglePrimary) => match self.primary {
                Some(_) => "this member is a secondary in single-primary mode".to_owned(),
                None => "single-primary mode and no primary is elected".to_owned(),
            },
            Some(Mode::MultiPrimary) if self.incompatible.contains(&origin) => {
                "this member's version is below the group's lowest".to_owned()
            }
            Some(Mode::MultiPrimary) => match (self.facts.get(&origin), self.lowest_version()) {
                (Some(facts), Some(lowest)) => format!(
                    "this member runs version {}, newer than the group's lowest {lowest}: \
                     only the lowest-version members take writes",
                    facts.version
                ),
                _ => "this member has not announced itself to the group yet".to_owned(),
            },
        })
    }

    /// The member the election rule picks now: among the compatible announced members of
    /// the configuration, lowest version, then highest weight, then lowest UUID.
    pub fn elect(&self) -> Option<MemberId> {
        self.candidates()
            .min_by_key(|&(member, facts)| {
                (facts.version, std::cmp::Reverse(facts.weight), member.0)
            })
            .map(|(member, _)| member)
    }

    fn candidates(&self) -> impl Iterator<Item = (MemberId, Facts)> + '_ {
        self.members.iter().filter_map(|member| {
            if self.incompatible.contains(member) {
                return None;
            }
            self.facts.get(member).map(|facts| (*member, *facts))
        })
    }

    fn is_candidate(&self, member: MemberId) -> bool {
        self.candidates().any(|(candidate, _)| candidate == member)
    }

    /// A new configuration at `seqno`: facts of members that left are dropped, and a
    /// primary that left is replaced by the election.
    pub fn on_reconfigure(&mut self, seqno: Seqno, members: &[MemberId]) -> Vec<RoleEvent> {
        self.members = members.to_vec();
        self.config_seqno = seqno;
        self.joined.retain(|member, _| members.contains(member));
        for member in members {
            self.joined.entry(*member).or_insert(seqno);
        }
        self.facts.retain(|member, _| members.contains(member));
        self.incompatible.retain(|member| members.contains(member));
        let mut events = Vec::new();
        if self
            .primary
            .is_some_and(|primary| !members.contains(&primary))
        {
            self.primary = None;
        }
        self.fill_primary(seqno, &mut events);
        events
    }

    /// An ordered role operation at `seqno`.
    pub fn on_op(&mut self, seqno: Seqno, op: RoleOp) -> Vec<RoleEvent> {
        let mut events = Vec::new();
        match op {
            RoleOp::Announce {
                member,
                facts,
                single_primary,
                ..
            } => self.on_announce(seqno, (member, facts, single_primary), &mut events),
            RoleOp::SetPrimary(member) => match self.appointable(member) {
                Err(reason) => events.push(RoleEvent::Refused { op, reason }),
                Ok(()) if self.mode != Some(Mode::SinglePrimary) => {
                    events.push(RoleEvent::Refused {
                        op,
                        reason: "the group is in multi-primary mode: SWITCH-MODE SINGLE first"
                            .to_owned(),
                    });
                }
                Ok(()) => self.appoint(seqno, member, &mut events),
            },
            RoleOp::SwitchToSingle(target) => {
                if let Some(Err(reason)) = target.map(|member| self.appointable(member)) {
                    events.push(RoleEvent::Refused { op, reason });
                    return events;
                }
                if self.mode != Some(Mode::SinglePrimary) {
                    self.mode = Some(Mode::SinglePrimary);
                    self.primary = None;
                    events.push(RoleEvent::Mode(Mode::SinglePrimary));
                }
                match target {
                    Some(member) => self.appoint(seqno, member, &mut events),
                    None => self.fill_primary(seqno, &mut events),
                }
            }
            RoleOp::SwitchToMulti => {
                if self.mode == Some(Mode::MultiPrimary) {
                    events.push(RoleEvent::Refused {
                        op,
                        reason: "the group is already in multi-primary mode".to_owned(),
                    });
                } else {
                    self.mode = Some(Mode::MultiPrimary);
                    self.primary = None;
                    events.push(RoleEvent::Mode(Mode::MultiPrimary));
                }
            }
        }
        events
    }

    fn on_announce(
        &mut self,
        seqno: Seqno,
        (member, facts, single_primary): (MemberId, Facts, bool),
        events: &mut Vec<RoleEvent>,
    ) {
        if !self.members.contains(&member) {
            // Announced before it left (or before an expel): nothing to record.
            return;
        }
        self.facts.remove(&member);
        self.incompatible.remove(&member);
        // Compared with the members that were there before it, as a join would be: an
        // early member whose announcement is ordered after a later member's is not
        // refused for being older.
        let joined = self.joined.get(&member).copied().unwrap_or(seqno);
        let lowest_before = self
            .candidates()
            .filter(|(other, _)| self.joined.get(other).is_some_and(|at| *at < joined))
            .map(|(_, facts)| facts.version)
            .min();
        if let Some(lowest) = lowest_before {
            if facts.version < lowest {
                self.incompatible.insert(member);
                self.facts.insert(member, facts);
                events.push(RoleEvent::Incompatible {
                    member,
                    version: facts.version,
                    lowest,
                });
                return;
            }
        }
        self.facts.insert(member, facts);
        if self.mode.is_none() {
            let mode = if single_primary {
                Mode::SinglePrimary
            } else {
                Mode::MultiPrimary
            };
            self.mode = Some(mode);
            events.push(RoleEvent::Mode(mode));
        }
        self.fill_primary(seqno, events);
    }

    fn appointable(&self, member: MemberId) -> Result<(), String> {
        if self.is_candidate(member) {
            return Ok(());
        }
        Err(if self.members.contains(&member) {
            format!(
                "member {} cannot be primary: it has not announced itself or its version is refused",
                format_uuid(member.0)
            )
        } else {
            format!("member {} is not in the group", format_uuid(member.0))
        })
    }

    fn appoint(&mut self, seqno: Seqno, member: MemberId, events: &mut Vec<RoleEvent>) {
        if self.primary == Some(member) {
            return;
        }
        self.primary = Some(member);
        self.primary_since = seqno;
        events.push(RoleEvent::Primary {
            member,
            why: Why::Appointed,
        });
    }

    /// In single-primary mode without a primary, elects one.
    fn fill_primary(&mut self, seqno: Seqno, events: &mut Vec<RoleEvent>) {
        if self.mode != Some(Mode::SinglePrimary) || self.primary.is_some() {
            return;
        }
        match self.elect() {
            Some(member) => {
                self.primary = Some(member);
                self.primary_since = seqno;
                events.push(RoleEvent::Primary {
                    member,
                    why: Why::Elected,
                });
            }
            None => events.push(RoleEvent::NoPrimary),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        text.parse().expect("version")
    }

    fn announce(member: u128, version: &str, weight: u8, single_primary: bool) -> RoleOp {
        RoleOp::Announce {
            member: MemberId(member),
            incarnation: 1,
            config_seqno: Seqno(1),
            facts: Facts {
                version: v(version),
                weight,
            },
            single_primary,
        }
    }

    /// A group of `members` in `single_primary` mode where each announced (version, weight).
    fn group(single_primary: bool, members: &[(u128, &str, u8)]) -> Roles {
        let mut roles = Roles::new();
        let ids: Vec<MemberId> = members.iter().map(|&(id, _, _)| MemberId(id)).collect();
        roles.on_reconfigure(Seqno(1), &ids);
        for (at, &(id, version, weight)) in members.iter().enumerate() {
            roles.on_op(
                Seqno(2 + at as u64),
                announce(id, version, weight, single_primary),
            );
        }
        roles
    }

    #[test]
    fn versions_parse_compare_and_refuse_garbage() {
        assert!(v("1.10.0") > v("1.9.9"));
        assert_eq!(v("0.1.0").to_string(), "0.1.0");
        for bad in ["", "1", "1.2", "1.2.3.4", "a.b.c", "1.2.-3", "70000.0.0"] {
            let error = bad.parse::<Version>().expect_err(bad);
            assert!(error.contains("major.minor.patch"), "{error}");
        }
        assert_eq!(Version::of_build().to_string(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn the_first_announcement_sets_the_mode_and_the_bootstrapper_is_primary() {
        let mut roles = Roles::new();
        roles.on_reconfigure(Seqno(1), &[MemberId(7)]);
        assert_eq!(roles.mode(), None);
        assert!(!roles.writable(MemberId(7)), "no mode yet: nobody writes");
        let events = roles.on_op(Seqno(2), announce(7, "1.0.0", 50, true));
        assert_eq!(
            events,
            vec![
                RoleEvent::Mode(Mode::SinglePrimary),
                RoleEvent::Primary {
                    member: MemberId(7),
                    why: Why::Elected
                }
            ]
        );
        assert_eq!(roles.primary_since(), Seqno(2));
        // A joiner configured for multi-primary follows the group's mode.
        roles.on_reconfigure(Seqno(3), &[MemberId(7), MemberId(3)]);
        roles.on_op(Seqno(4), announce(3, "1.0.0", 90, false));
        assert_eq!(roles.mode(), Some(Mode::SinglePrimary));
        assert_eq!(
            roles.primary(),
            Some(MemberId(7)),
            "a joiner never deposes the primary"
        );
        assert!(roles.writable(MemberId(7)));
        assert!(!roles.writable(MemberId(3)));
        assert!(roles
            .read_only_reason(MemberId(3))
            .unwrap()
            .contains("secondary"));
    }

    #[test]
    fn election_prefers_lowest_version_then_highest_weight_then_lowest_uuid() {
        // Lowest version wins over weight (the older member is there first: a member
        // older than the group is refused when it joins).
        let roles = group(
            true,
            &[(2, "1.0.0", 0), (1, "1.1.0", 100), (3, "1.1.0", 90)],
        );
        assert_eq!(roles.elect(), Some(MemberId(2)));
        // Same version: highest weight.
        let roles = group(
            true,
            &[(1, "1.0.0", 40), (2, "1.0.0", 80), (3, "1.0.0", 60)],
        );
        assert_eq!(roles.elect(), Some(MemberId(2)));
        // Same version and weight: lowest UUID.
        let roles = group(
            true,
            &[(9, "1.0.0", 50), (4, "1.0.0", 50), (6, "1.0.0", 50)],
        );
        assert_eq!(roles.elect(), Some(MemberId(4)));
    }

    #[test]
    fn a_departed_primary_is_replaced_by_the_election_at_that_seqno() {
        let mut roles = group(
            true,
            &[(1, "1.0.0", 50), (2, "1.0.0", 70), (3, "1.0.0", 60)],
        );
        assert_eq!(
            roles.primary(),
            Some(MemberId(1)),
            "the first announcer was alone"
        );
        let events = roles.on_reconfigure(Seqno(10), &[MemberId(2), MemberId(3)]);
        assert_eq!(
            events,
            vec![RoleEvent::Primary {
                member: MemberId(2),
                why: Why::Elected
            }]
        );
        assert_eq!(roles.primary_since(), Seqno(10));
        assert!(!roles.writable(MemberId(1)));
        // A secondary leaving changes nothing.
        assert!(roles.on_reconfigure(Seqno(11), &[MemberId(2)]).is_empty());
        // The last member leaving: no primary.
        assert_eq!(
            roles.on_reconfigure(Seqno(12), &[]),
            vec![RoleEvent::NoPrimary]
        );
        assert_eq!(roles.primary(), None);
    }

    #[test]
    fn set_primary_and_switch_mode_are_ordered_and_refused_with_reasons() {
        let mut roles = group(true, &[(1, "1.0.0", 50), (2, "1.0.0", 50)]);
        let events = roles.on_op(Seqno(20), RoleOp::SetPrimary(MemberId(2)));
        assert_eq!(
            events,
            vec![RoleEvent::Primary {
                member: MemberId(2),
                why: Why::Appointed
            }]
        );
        assert!(
            !roles.writable(MemberId(1)),
            "the old primary's later writes abort"
        );
        let refused = roles.on_op(Seqno(21), RoleOp::SetPrimary(MemberId(9)));
        assert!(
            matches!(&refused[..], [RoleEvent::Refused { reason, .. }] if reason.contains("not in the group")),
            "{refused:?}"
        );
        assert_eq!(
            roles.on_op(Seqno(22), RoleOp::SwitchToMulti),
            vec![RoleEvent::Mode(Mode::MultiPrimary)]
        );
        assert!(roles.writable(MemberId(1)) && roles.writable(MemberId(2)));
        let refused = roles.on_op(Seqno(23), RoleOp::SetPrimary(MemberId(1)));
        assert!(
            matches!(&refused[..], [RoleEvent::Refused { reason, .. }] if reason.contains("multi-primary")),
            "{refused:?}"
        );
        assert!(matches!(
            &roles.on_op(Seqno(24), RoleOp::SwitchToMulti)[..],
            [RoleEvent::Refused { .. }]
        ));
        // Back to single with a named primary, then without one (the election picks).
        let events = roles.on_op(Seqno(25), RoleOp::SwitchToSingle(Some(MemberId(2))));
        assert_eq!(roles.primary(), Some(MemberId(2)), "{events:?}");
        roles.on_op(Seqno(26), RoleOp::SwitchToMulti);
        roles.on_op(Seqno(27), RoleOp::SwitchToSingle(None));
        assert_eq!(roles.primary(), Some(MemberId(1)));
        assert_eq!(roles.primary_since(), Seqno(27));
    }

    #[test]
    fn versions_older_than_the_group_are_refused_and_newer_ones_are_read_only() {
        let mut roles = group(false, &[(1, "1.2.0", 50), (2, "1.2.0", 50)]);
        roles.on_reconfigure(Seqno(10), &[MemberId(1), MemberId(2), MemberId(3)]);
        let events = roles.on_op(Seqno(11), announce(3, "1.1.0", 50, false));
        assert_eq!(
            events,
            vec![RoleEvent::Incompatible {
                member: MemberId(3),
                version: v("1.1.0"),
                lowest: v("1.2.0")
            }]
        );
        assert!(!roles.writable(MemberId(3)));
        assert!(roles
            .read_only_reason(MemberId(3))
            .unwrap()
            .contains("below"));
        // A newer member joins read-only in multi-primary mode ...
        roles.on_reconfigure(Seqno(12), &[MemberId(1), MemberId(2), MemberId(4)]);
        roles.on_op(Seqno(13), announce(4, "1.3.0", 50, false));
        assert!(roles.writable(MemberId(1)));
        assert!(!roles.writable(MemberId(4)));
        assert!(roles
            .read_only_reason(MemberId(4))
            .unwrap()
            .contains("1.3.0"));
        // ... and becomes writable once the older members left.
        roles.on_reconfigure(Seqno(14), &[MemberId(4)]);
        assert!(roles.writable(MemberId(4)));
    }

    #[test]
    fn an_early_member_announced_late_is_compared_with_those_before_it_only() {
        let mut roles = Roles::new();
        roles.on_reconfigure(Seqno(1), &[MemberId(1)]);
        roles.on_reconfigure(Seqno(2), &[MemberId(1), MemberId(2)]);
        // The joiner's (newer) announcement is ordered before the founder's.
        roles.on_op(Seqno(3), announce(2, "2.0.0", 50, false));
        assert!(roles
            .on_op(Seqno(4), announce(1, "1.0.0", 50, false))
            .is_empty());
        assert!(!roles.is_incompatible(MemberId(1)));
        assert!(roles.writable(MemberId(1)) && !roles.writable(MemberId(2)));
    }

    #[test]
    fn an_announcement_from_a_member_no_longer_in_the_configuration_is_ignored() {
        let mut roles = group(true, &[(1, "1.0.0", 50)]);
        assert!(roles
            .on_op(Seqno(9), announce(5, "1.0.0", 100, true))
            .is_empty());
        assert_eq!(roles.facts(MemberId(5)), None);
    }
}
