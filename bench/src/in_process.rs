//! An in-process group: N [`Member`]s in this process on temporary data directories,
//! talking over real loopback TCP, and the [`Target`] that drives them with
//! command-style transactions (`Member::execute_blocking`).
//!
//! Each operation is one command-style transaction, run at commit time against the
//! member's latest state and its in-flight overlay (DESIGN.md section 5): a write puts
//! without reading (never aborts), an increment reads its key (a checked key), a
//! transfer reads and writes each of its accounts. A conflict is retried inside the
//! member up to `autocommit_retries` times, as the RESP server does; what is left is an
//! abort. Members are stopped and their directories removed when the group is dropped.

use std::path::Path;
use std::time::{Duration, Instant};

use tutti_engine::consistency::Consistency;
use tutti_engine::group::{format_uuid, GroupOptions};
use tutti_engine::local::CommandTxn;
use tutti_engine::member::{Member, MemberOptions};
use tutti_net::gcs::{MemberId, MemberState};
use tutti_net::transport::runtime::IoBackend;
use tutti_storage::log::SyncPolicy;
use tutti_storage::store::Value;

use crate::target::{BenchError, MemberStatsRow, Outcome, Session, Target};
use crate::workload::{parse_integer, Operation};

/// Longest wait for the group to form and for the members to converge.
pub const SETTLE_WAIT: Duration = Duration::from_secs(30);
/// Most members of an in-process group.
pub const MEMBERS_MAX: usize = 9;

/// How an in-process group is set up.
#[derive(Clone, Debug)]
pub struct GroupSpec {
    /// Members.
    pub members: usize,
    /// The members' `log_sync`.
    pub log_sync: SyncPolicy,
    /// The members' `io_backend`.
    pub io_backend: IoBackend,
    /// Local chaining (the engine's behaviour; off only to measure what it is worth).
    pub chaining: bool,
    /// Runs of a conflicted command after the first.
    pub autocommit_retries: u32,
    /// Single-primary mode (clients then all go to the primary).
    pub single_primary: bool,
    /// The members' default consistency level.
    pub consistency: Consistency,
}

/// A running in-process group; dropping it stops the members and removes their data.
pub struct InProcessGroup {
    members: Vec<Member>,
    // Dropped after the members (fields drop in declaration order).
    _dir: tempfile::TempDir,
}

impl InProcessGroup {
    /// Starts the members (the first bootstraps, the others join through it) and waits
    /// until every one is ONLINE in a view of all of them.
    pub fn start(spec: &GroupSpec) -> Result<InProcessGroup, BenchError> {
        if spec.members == 0 || spec.members > MEMBERS_MAX {
            return Err(BenchError::Options(format!(
                "--members {} is out of range: use 1..={MEMBERS_MAX}",
                spec.members
            )));
        }
        let dir = tempfile::tempdir()?;
        let members = start_members(spec, dir.path())?;
        let group = InProcessGroup { members, _dir: dir };
        group.wait_online(spec.members)?;
        Ok(group)
    }

    /// The members, the first being the one that bootstrapped.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    fn wait_online(&self, count: usize) -> Result<(), BenchError> {
        let deadline = Instant::now() + SETTLE_WAIT;
        // Formed, and the roles settled: every member announced itself to every member.
        while !self.members.iter().all(|member| {
            let roles = member.roles();
            member.group().stats().state == Some(MemberState::Online)
                && member.group().members().len() == count
                && roles.mode().is_some()
                && self
                    .members
                    .iter()
                    .all(|other| roles.facts(MemberId(other.group().member_id())).is_some())
        }) {
            if Instant::now() > deadline {
                return Err(BenchError::Settle(format!(
                    "the {count}-member group did not form within {SETTLE_WAIT:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Waits until every member applied the same prefix, the last one delivered.
    pub fn converge(&self) -> Result<(), BenchError> {
        let deadline = Instant::now() + SETTLE_WAIT;
        loop {
            let last = self.members[0].group().stats().last_delivered;
            let watermarks: Vec<u64> = self.members.iter().map(|m| m.watermark().0).collect();
            if watermarks.iter().all(|&watermark| watermark == last) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(BenchError::Settle(format!(
                    "the members did not converge within {SETTLE_WAIT:?} (watermarks \
                     {watermarks:?}, last delivered {last})"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for InProcessGroup {
    fn drop(&mut self) {
        for member in &self.members {
            let _ = member.shutdown(None);
        }
    }
}

fn start_members(spec: &GroupSpec, dir: &Path) -> Result<Vec<Member>, BenchError> {
    let group_name = u128::from_le_bytes(*uuid::Uuid::new_v4().as_bytes());
    let mut members: Vec<Member> = Vec::with_capacity(spec.members);
    let mut first_peer = None;
    let addrs = tutti_net::transport::free_loopback_addrs(2 * spec.members)?;
    for (index, ports) in addrs.chunks_exact(2).enumerate() {
        let (peer, client) = (ports[0], ports[1]);
        let mut group = GroupOptions::new(
            group_name,
            dir.join(format!("member-{index}")),
            peer,
            client,
        );
        group.log_sync = spec.log_sync;
        group.io_backend = spec.io_backend;
        group.bootstrap = index == 0;
        group.seeds = first_peer.into_iter().collect();
        first_peer.get_or_insert(peer);
        let mut options = MemberOptions::new(group);
        options.chaining = spec.chaining;
        options.autocommit_retries = spec.autocommit_retries;
        options.single_primary_mode = spec.single_primary;
        options.consistency = spec.consistency;
        match Member::start(options) {
            Ok(member) => members.push(member),
            Err(source) => {
                for member in &members {
                    let _ = member.shutdown(None);
                }
                return Err(BenchError::Start { index, source });
            }
        }
    }
    Ok(members)
}

/// The in-process group as a benchmark target.
pub struct InProcessTarget {
    group: InProcessGroup,
    /// Clients spread over every member (true) or all through the first; in
    /// single-primary mode they all go to the primary.
    send_to_all: bool,
}

impl InProcessTarget {
    /// Starts a group for a benchmark.
    pub fn start(spec: &GroupSpec, send_to_all: bool) -> Result<InProcessTarget, BenchError> {
        Ok(InProcessTarget {
            group: InProcessGroup::start(spec)?,
            send_to_all,
        })
    }

    /// The group.
    pub fn group(&self) -> &InProcessGroup {
        &self.group
    }
}

struct MemberSession<'a> {
    member: &'a Member,
}

/// Reads an integer through the transaction (a checked key); a non-integer reads as 0,
/// which no workload writes under its own prefix.
fn read_integer(txn: &mut CommandTxn<'_>, key: &[u8]) -> i64 {
    parse_integer(txn.get(key).as_deref()).unwrap_or(0)
}

fn integer_value(value: i64) -> Value {
    Value::from(value.to_string().as_bytes())
}

impl Session for MemberSession<'_> {
    fn execute(&mut self, operation: &Operation) -> Outcome {
        let result = match operation {
            Operation::Write { key, value } => self
                .member
                .execute_blocking(|txn| txn.put(key, Value::clone(value)))
                .map(|executed| executed.retries),
            Operation::Increment { key } => self
                .member
                .execute_blocking(|txn| {
                    let next = read_integer(txn, key) + 1;
                    txn.put(key, integer_value(next));
                })
                .map(|executed| executed.retries),
            Operation::Transfer { from, to, amount } => self
                .member
                .execute_blocking(|txn| {
                    let paid = amount * Operation::receivers(to);
                    let balance = read_integer(txn, from);
                    txn.put(from, integer_value(balance - paid));
                    for account in to {
                        let balance = read_integer(txn, account);
                        txn.put(account, integer_value(balance + amount));
                    }
                })
                .map(|executed| executed.retries),
            Operation::Read { key } => self
                .member
                .execute_blocking(|txn| txn.get(key).is_some())
                .map(|executed| executed.retries),
        };
        match result {
            Ok(retries) => Outcome::Committed { retries },
            Err(error) if error.is_retryable() => Outcome::Aborted {
                retries: self.member.autocommit_retries(),
            },
            Err(error) => Outcome::Failed(error.to_string()),
        }
    }
}

impl Target for InProcessTarget {
    fn describe(&self) -> String {
        format!(
            "in-process group of {} member(s) on loopback TCP",
            self.group.members.len()
        )
    }

    fn session(&self, client: usize) -> Result<Box<dyn Session + '_>, BenchError> {
        let members = self.group.members();
        let primary = members[0].roles().primary().and_then(|primary| {
            members
                .iter()
                .find(|member| member.group().member_id() == primary.0)
        });
        let member = match primary {
            Some(primary) => primary,
            None if self.send_to_all => &members[client % members.len()],
            None => &members[0],
        };
        Ok(Box::new(MemberSession { member }))
    }

    fn member_stats(&self) -> Vec<MemberStatsRow> {
        self.group
            .members()
            .iter()
            .map(|member| MemberStatsRow {
                member: format_uuid(member.group().member_id()),
                columns: member
                    .stats()
                    .columns()
                    .into_iter()
                    .map(|(name, value)| (name.to_owned(), value))
                    .collect(),
            })
            .collect()
    }

    fn settle(&self) -> Result<(), BenchError> {
        self.group.converge()
    }

    fn sums(&self, keys: &[Vec<u8>]) -> Result<Vec<i64>, BenchError> {
        self.group
            .members()
            .iter()
            .map(|member| {
                // One watermark for every key: a consistent snapshot of this member.
                let watermark = member.watermark();
                keys.iter().try_fold(0i64, |sum, key| {
                    let value = member.store().get(key, watermark);
                    parse_integer(value.as_deref())
                        .map(|value| sum + value)
                        .map_err(BenchError::Report)
                })
            })
            .collect()
    }
}
