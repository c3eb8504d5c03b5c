//! Flow control (DESIGN.md section 9): Group Replication's QUOTA mode.
//!
//! Every `flow_control_period` each member reports, through the total order, its
//! certifier queue (entries ordered but not yet certified here), its applier queue
//! (committed transactions not yet applied here) and how many transactions it applied and
//! proposed so far. Every member keeps the latest two reports of each member; at the end
//! of each of its periods it computes its own quota for the next one:
//!
//! - some member over `certifier_threshold` or `applier_threshold` (RECOVERING members
//!   report and count like the others): the group may commit what the slowest of those
//!   members applied in its last period, less `hold_percent` (10%), less half of its
//!   queue's excess over the threshold (so a backlog built before the first reports
//!   drains back to the threshold instead of staying), never below 5% of that capacity,
//!   split evenly among the members that proposed in that period;
//! - nobody over: a quota in force grows by `release_percent` (50%) per period, and is
//!   lifted once it is more than twice what this member proposed in the last period.
//!
//! A proposal over the quota waits for the next period, bounded by the caller's wait (a
//! throttled proposal never waits forever); the waits and the throttled periods are
//! counted so a user can see that, and by whom, the group is throttled. Mode DISABLED
//! never throttles. This module must never do IO; its clock is the caller's `now`, the
//! time since any fixed epoch (the member's start, or the simulator's time zero).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tutti_net::gcs::MemberId;

/// Group Replication's default thresholds (`flow_control_certifier_threshold`,
/// `flow_control_applier_threshold`).
pub const THRESHOLD_DEFAULT: u64 = 25_000;
/// Default `flow_control_period`.
pub const PERIOD_DEFAULT: Duration = Duration::from_secs(1);
/// Default `flow_control_hold_percent`.
pub const HOLD_PERCENT_DEFAULT: u64 = 10;
/// Default `flow_control_release_percent`.
pub const RELEASE_PERCENT_DEFAULT: u64 = 50;

/// `flow_control_mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlowMode {
    /// Throttle writers when a member falls behind.
    #[default]
    Quota,
    /// Never throttle.
    Disabled,
}

impl fmt::Display for FlowMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FlowMode::Quota => "QUOTA",
            FlowMode::Disabled => "DISABLED",
        })
    }
}

impl FromStr for FlowMode {
    type Err = String;

    fn from_str(text: &str) -> Result<FlowMode, String> {
        match text.trim().to_ascii_uppercase().as_str() {
            "QUOTA" => Ok(FlowMode::Quota),
            "DISABLED" => Ok(FlowMode::Disabled),
            _ => Err(format!(
                "{text:?} is not a flow control mode (QUOTA or DISABLED)"
            )),
        }
    }
}

/// Flow control's options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowOptions {
    /// QUOTA or DISABLED.
    pub mode: FlowMode,
    /// Reports and quotas are per period.
    pub period: Duration,
    /// Certifier queue over which a member throttles the group.
    pub certifier_threshold: u64,
    /// Applier queue over which a member throttles the group.
    pub applier_threshold: u64,
    /// Share of the slowest member's capacity held back.
    pub hold_percent: u64,
    /// Growth of the quota per period once nobody is over a threshold.
    pub release_percent: u64,
}

impl Default for FlowOptions {
    fn default() -> FlowOptions {
        FlowOptions {
            mode: FlowMode::Quota,
            period: PERIOD_DEFAULT,
            certifier_threshold: THRESHOLD_DEFAULT,
            applier_threshold: THRESHOLD_DEFAULT,
            hold_percent: HOLD_PERCENT_DEFAULT,
            release_percent: RELEASE_PERCENT_DEFAULT,
        }
    }
}

/// One member's report for one period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowReport {
    /// The reporting member.
    pub member: MemberId,
    /// Entries ordered and not yet certified there.
    pub certifier_queue: u64,
    /// Committed transactions not yet applied there.
    pub applier_queue: u64,
    /// Transactions it applied (committed ones, its own and others'), since it started.
    pub applied: u64,
    /// Transactions it proposed, since it started.
    pub proposed: u64,
}

/// Counters and state a user reads (`GROUP STATS`, `INFO group`, the metrics).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// The mode.
    pub mode: String,
    /// This member's quota for the current period (`None`: not throttled).
    pub quota: Option<u64>,
    /// The member whose queue set the quota, while one does.
    pub throttled_by: Option<MemberId>,
    /// Periods this member spent under a quota.
    pub throttled_periods: u64,
    /// Proposals that waited for the next period.
    pub throttled_waits: u64,
    /// Total time those proposals waited, microseconds.
    pub throttled_wait_us: u64,
}

/// One member's flow control.
#[derive(Debug)]
pub struct FlowControl {
    options: FlowOptions,
    /// (previous, latest) report of each member.
    reports: BTreeMap<MemberId, (Option<FlowReport>, FlowReport)>,
    period_start: Duration,
    used: u64,
    quota: Option<u64>,
    throttled_by: Option<MemberId>,
    stats: FlowStats,
}

impl FlowControl {
    /// Flow control starting its first period at `now`.
    pub fn new(options: FlowOptions, now: Duration) -> FlowControl {
        FlowControl {
            options,
            reports: BTreeMap::new(),
            period_start: now,
            used: 0,
            quota: None,
            throttled_by: None,
            stats: FlowStats {
                mode: options.mode.to_string(),
                ..FlowStats::default()
            },
        }
    }

    /// The options.
    pub fn options(&self) -> FlowOptions {
        self.options
    }

    /// A member's report, delivered through the order.
    pub fn on_report(&mut self, report: FlowReport) {
        match self.reports.get_mut(&report.member) {
            Some((previous, latest)) => {
                *previous = Some(*latest);
                *latest = report;
            }
            None => {
                self.reports.insert(report.member, (None, report));
            }
        }
    }

    /// Forgets members that left.
    pub fn retain_members(&mut self, members: &[MemberId]) {
        self.reports.retain(|member, _| members.contains(member));
    }

    /// Ends the period if it is over at `now`: the next quota from the latest reports.
    /// `me` is this member (its own proposals decide when a released quota is lifted).
    pub fn tick(&mut self, now: Duration, me: MemberId) {
        if now.saturating_sub(self.period_start) < self.options.period {
            return;
        }
        self.period_start = now;
        self.used = 0;
        if self.options.mode == FlowMode::Disabled {
            self.quota = None;
            return;
        }
        let options = self.options;
        let over = self
            .reports
            .values()
            .filter(|(_, latest)| {
                latest.applier_queue > options.applier_threshold
                    || latest.certifier_queue > options.certifier_threshold
            })
            .map(|(previous, latest)| {
                let applied = previous.map_or(0, |previous| {
                    latest.applied.saturating_sub(previous.applied)
                });
                let excess = latest
                    .applier_queue
                    .saturating_sub(options.applier_threshold)
                    .max(
                        latest
                            .certifier_queue
                            .saturating_sub(options.certifier_threshold),
                    );
                (latest.member, applied, excess)
            })
            .min_by_key(|&(member, applied, _)| (applied, member.0));
        if let Some((slowest, capacity, excess)) = over {
            let writers = self
                .reports
                .values()
                .filter(|(previous, latest)| {
                    previous.is_some_and(|previous| latest.proposed > previous.proposed)
                })
                .count()
                .max(1) as u64;
            let held = capacity * (100 - options.hold_percent.min(100)) / 100;
            let total = held.saturating_sub(excess / 2).max(capacity / 20);
            self.quota = Some((total / writers).max(1));
            self.throttled_by = Some(slowest);
        } else if let Some(quota) = self.quota {
            let grown = quota + (quota * options.release_percent / 100).max(1);
            let proposed = self
                .reports
                .get(&me)
                .and_then(|(previous, latest)| {
                    previous.map(|previous| latest.proposed.saturating_sub(previous.proposed))
                })
                .unwrap_or(0);
            self.quota = (grown <= 2 * proposed).then_some(grown);
            self.throttled_by = None;
        }
        if self.quota.is_some() {
            self.stats.throttled_periods += 1;
        }
    }

    /// Whether a proposal may go now; `Err(wait)` when the quota is used up: the time
    /// until the next period. A transaction checks before it runs (a read-only one then
    /// proposes nothing and takes nothing) and [`FlowControl::take`]s when it proposes,
    /// so concurrent sessions may overshoot a quota by one proposal each.
    pub fn check(&self, now: Duration) -> Result<(), Duration> {
        match self.quota {
            Some(quota) if self.used >= quota => {
                let end = self.period_start + self.options.period;
                Err(end.saturating_sub(now).max(Duration::from_millis(1)))
            }
            _ => Ok(()),
        }
    }

    /// Counts one proposal against the period's quota.
    pub fn take(&mut self) {
        self.used += 1;
    }

    /// Counts a proposal that waited `waited` for the quota.
    pub fn on_waited(&mut self, waited: Duration) {
        self.stats.throttled_waits += 1;
        self.stats.throttled_wait_us += u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
    }

    /// What a user reads.
    pub fn stats(&self) -> FlowStats {
        FlowStats {
            quota: self.quota,
            throttled_by: self.throttled_by,
            ..self.stats.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(member: u128, applier_queue: u64, applied: u64, proposed: u64) -> FlowReport {
        FlowReport {
            member: MemberId(member),
            certifier_queue: 0,
            applier_queue,
            applied,
            proposed,
        }
    }

    fn options() -> FlowOptions {
        FlowOptions {
            applier_threshold: 100,
            certifier_threshold: 100,
            ..FlowOptions::default()
        }
    }

    #[test]
    fn a_member_over_the_threshold_sets_a_quota_from_its_capacity_split_among_writers() {
        let start = Duration::ZERO;
        let mut flow = FlowControl::new(options(), start);
        let me = MemberId(1);
        // Two writers (1 and 2); member 3 applies 500 per period and is 100 over.
        flow.on_report(report(1, 0, 0, 0));
        flow.on_report(report(2, 0, 0, 0));
        flow.on_report(report(3, 0, 0, 0));
        flow.on_report(report(1, 0, 1000, 600));
        flow.on_report(report(2, 0, 1000, 400));
        flow.on_report(report(3, 200, 500, 0));
        flow.tick(start + Duration::from_secs(1), me);
        let stats = flow.stats();
        assert_eq!(
            stats.quota,
            Some(200),
            "500 less 10%, less half the excess, split between two writers"
        );
        assert_eq!(stats.throttled_by, Some(MemberId(3)));
        let now = start + Duration::from_millis(1001);
        for _ in 0..200 {
            assert!(flow.check(now).is_ok());
            flow.take();
        }
        let wait = flow.check(now).expect_err("the quota is used up");
        assert!(
            wait <= Duration::from_secs(1) && wait >= Duration::from_millis(998),
            "{wait:?}"
        );
        flow.on_waited(Duration::from_millis(3));
        assert_eq!(
            (flow.stats().throttled_waits, flow.stats().throttled_wait_us),
            (1, 3000)
        );
    }

    #[test]
    fn a_large_backlog_drains_at_the_floor_of_five_percent() {
        let start = Duration::ZERO;
        let mut flow = FlowControl::new(options(), start);
        flow.on_report(report(3, 0, 0, 0));
        flow.on_report(report(3, 10_000, 1000, 0));
        flow.tick(start + Duration::from_secs(1), MemberId(1));
        assert_eq!(flow.stats().quota, Some(50), "5% of the slow member's 1000");
    }

    #[test]
    fn once_nobody_is_over_the_quota_grows_by_half_then_is_lifted() {
        let start = Duration::ZERO;
        let mut flow = FlowControl::new(options(), start);
        let me = MemberId(1);
        flow.on_report(report(1, 0, 0, 0));
        flow.on_report(report(3, 0, 0, 0));
        flow.on_report(report(1, 0, 100, 100));
        flow.on_report(report(3, 101, 100, 0));
        flow.tick(start + Duration::from_secs(1), me);
        assert_eq!(flow.stats().quota, Some(90));
        // Caught up; this member proposed 100 in the period.
        flow.on_report(report(1, 0, 200, 200));
        flow.on_report(report(3, 0, 200, 0));
        flow.tick(start + Duration::from_secs(2), me);
        assert_eq!(flow.stats().quota, Some(135), "released by half");
        flow.on_report(report(1, 0, 300, 300));
        flow.on_report(report(3, 0, 300, 0));
        flow.tick(start + Duration::from_secs(3), me);
        assert_eq!(
            flow.stats().quota,
            None,
            "202 is more than twice the 100 proposed"
        );
        assert_eq!(flow.stats().throttled_periods, 2);
    }

    #[test]
    fn disabled_never_throttles_and_modes_parse() {
        let start = Duration::ZERO;
        let mut flow = FlowControl::new(
            FlowOptions {
                mode: FlowMode::Disabled,
                ..options()
            },
            start,
        );
        flow.on_report(report(3, 0, 0, 0));
        flow.on_report(report(3, 1_000_000, 1, 0));
        flow.tick(start + Duration::from_secs(1), MemberId(1));
        assert_eq!(flow.stats().quota, None);
        flow.take();
        assert!(flow.check(start).is_ok());
        assert_eq!("quota".parse::<FlowMode>(), Ok(FlowMode::Quota));
        assert_eq!("DISABLED".parse::<FlowMode>(), Ok(FlowMode::Disabled));
        assert!("SOMETIMES"
            .parse::<FlowMode>()
            .unwrap_err()
            .contains("QUOTA or DISABLED"));
    }

    #[test]
    fn a_period_not_over_changes_nothing() {
        let start = Duration::ZERO;
        let mut flow = FlowControl::new(options(), start);
        flow.on_report(report(3, 0, 0, 0));
        flow.on_report(report(3, 1000, 10, 0));
        flow.tick(start + Duration::from_millis(500), MemberId(1));
        assert_eq!(flow.stats().quota, None);
    }
}
