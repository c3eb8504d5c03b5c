//! The driver and the run against fake targets: the open loop charges queueing delay
//! to latency, and the transfer workload detects a total that is not conserved.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tutti_bench::report::RunConfig;
use tutti_bench::suite;
use tutti_bench::target::{BenchError, Outcome, Session, Target};
use tutti_bench::workload::{parse_integer, Operation, Workload};

fn config(workload: Workload, clients: usize, duration_s: f64, rate: Option<f64>) -> RunConfig {
    RunConfig {
        target: "fake".to_owned(),
        members: 1,
        connect: Vec::new(),
        log_sync: "none".to_owned(),
        io_backend: "none".to_owned(),
        mode: "multi".to_owned(),
        consistency: None,
        isolation: "command".to_owned(),
        workload,
        distribution: "uniform".to_owned(),
        keys: 50,
        txn_keys: 3,
        value_size: 8,
        read_ratio: 0.5,
        clients,
        duration_s,
        warmup_s: 0.0,
        rate,
        send_to: "all".to_owned(),
        seed: 1,
        autocommit_retries: 0,
        chaining: true,
    }
}

/// Every operation takes `service` and commits.
struct SlowTarget {
    service: Duration,
}

struct SlowSession {
    service: Duration,
}

impl Session for SlowSession {
    fn execute(&mut self, _operation: &Operation) -> Outcome {
        std::thread::sleep(self.service);
        Outcome::Committed { retries: 0 }
    }
}

impl Target for SlowTarget {
    fn describe(&self) -> String {
        "slow fake".to_owned()
    }
    fn session(&self, _client: usize) -> Result<Box<dyn Session + '_>, BenchError> {
        Ok(Box::new(SlowSession {
            service: self.service,
        }))
    }
    fn sums(&self, _keys: &[Vec<u8>]) -> Result<Vec<i64>, BenchError> {
        Ok(vec![0])
    }
}

#[test]
fn the_open_loop_charges_queueing_delay_to_latency() {
    // One client that can serve 200 operations a second, asked for 400: the queue grows
    // through the whole second, so operations due late wait up to about half a second.
    let target = SlowTarget {
        service: Duration::from_millis(5),
    };
    let overloaded = config(Workload::Write, 1, 1.0, Some(400.0));
    let result = suite::run(&target, &overloaded, None, &mut |_| {}).expect("a run");
    let report = &result.report;
    let intended = report.commit_latency_us;
    let from_send = report
        .commit_latency_from_send_us
        .expect("open loop records it");
    assert!(
        from_send.p50 >= 5000 && from_send.p50 < 20_000,
        "{from_send:?}"
    );
    assert!(
        intended.p99 > 200_000,
        "intended {intended:?}, from send {from_send:?}"
    );
    assert!(
        intended.p50 > 10 * from_send.p50,
        "{intended:?} vs {from_send:?}"
    );
    assert!(report.unsent > 50, "unsent {}", report.unsent);

    // Below capacity the two agree: nothing queues.
    let relaxed = config(Workload::Write, 1, 1.0, Some(50.0));
    let result = suite::run(&target, &relaxed, None, &mut |_| {}).expect("a run");
    let (intended, from_send) = (
        result.report.commit_latency_us,
        result
            .report
            .commit_latency_from_send_us
            .expect("open loop"),
    );
    assert!(
        intended.p50 < from_send.p50 + 5000,
        "{intended:?} vs {from_send:?}"
    );
    assert_eq!(result.report.unsent, 0);
}

#[test]
fn the_closed_loop_measures_from_the_send() {
    let target = SlowTarget {
        service: Duration::from_millis(2),
    };
    let result = suite::run(
        &target,
        &config(Workload::Write, 4, 0.5, None),
        None,
        &mut |_| {},
    )
    .expect("a run");
    let report = &result.report;
    assert!(report.commit_latency_from_send_us.is_none());
    assert!(report.commit_latency_us.p50 >= 2000 && report.commit_latency_us.p50 < 10_000);
    // Four clients at most 500/s each for half a second.
    assert!(
        report.committed > 100 && report.committed <= 1000,
        "{}",
        report.committed
    );
}

/// A bank in memory; `lose_every` > 0 drops the credit of every n-th transfer.
struct Bank {
    accounts: Mutex<HashMap<Vec<u8>, i64>>,
    transfers: AtomicU64,
    lose_every: u64,
}

struct BankSession<'a> {
    bank: &'a Bank,
}

impl Session for BankSession<'_> {
    fn execute(&mut self, operation: &Operation) -> Outcome {
        let Operation::Transfer { from, to, amount } = operation else {
            return Outcome::Failed("only transfers".to_owned());
        };
        let number = self.bank.transfers.fetch_add(1, Ordering::Relaxed) + 1;
        let mut accounts = self.bank.accounts.lock().expect("bank lock");
        *accounts.entry(from.clone()).or_insert(0) -= amount * Operation::receivers(to);
        let lose = self.bank.lose_every > 0 && number % self.bank.lose_every == 0;
        for (index, account) in to.iter().enumerate() {
            if !(lose && index == 0) {
                *accounts.entry(account.clone()).or_insert(0) += amount;
            }
        }
        Outcome::Committed { retries: 0 }
    }
}

impl Target for Bank {
    fn describe(&self) -> String {
        "bank fake".to_owned()
    }
    fn session(&self, _client: usize) -> Result<Box<dyn Session + '_>, BenchError> {
        Ok(Box::new(BankSession { bank: self }))
    }
    fn sums(&self, keys: &[Vec<u8>]) -> Result<Vec<i64>, BenchError> {
        let accounts = self.accounts.lock().expect("bank lock");
        let sum = keys
            .iter()
            .map(|key| {
                let value = accounts.get(key).map(|v| v.to_string().into_bytes());
                parse_integer(value.as_deref()).expect("integers")
            })
            .sum();
        Ok(vec![sum])
    }
}

fn bank(lose_every: u64) -> Bank {
    // Money already in the bank: the check compares with the total before the run.
    let accounts = (0..50)
        .map(|index| (format!("t:{index}").into_bytes(), 1000))
        .collect();
    Bank {
        accounts: Mutex::new(accounts),
        transfers: AtomicU64::new(0),
        lose_every,
    }
}

#[test]
fn the_transfer_check_passes_when_money_is_conserved() {
    let honest = bank(0);
    let result = suite::run(
        &honest,
        &config(Workload::Transfer, 4, 0.3, None),
        None,
        &mut |_| {},
    )
    .expect("a run");
    let check = result
        .report
        .transfer_check
        .clone()
        .expect("transfers are checked");
    assert!(result.report.committed > 100);
    assert_eq!(check.expected, 50_000);
    assert_eq!(check.observed, vec![50_000]);
    assert!(check.conserved && result.report.checks_passed());
}

#[test]
fn the_transfer_check_fails_when_money_is_lost() {
    let lossy = bank(100);
    let result = suite::run(
        &lossy,
        &config(Workload::Transfer, 4, 0.3, None),
        None,
        &mut |_| {},
    )
    .expect("a run");
    let report = &result.report;
    assert!(report.committed >= 100, "{} transfers", report.committed);
    let check = report
        .transfer_check
        .as_ref()
        .expect("transfers are checked");
    assert!(!check.conserved, "{check:?}");
    assert!(check.observed[0] < check.expected, "{check:?}");
    assert!(!report.checks_passed());
}

#[test]
fn modes_and_levels_are_checked_by_name() {
    let mut run = config(Workload::Write, 1, 1.0, None);
    run.mode = "single".to_owned();
    run.consistency = Some("before".to_owned());
    suite::validate(&run).expect("single-primary at BEFORE is a valid run");
    run.mode = "sideways".to_owned();
    let error = suite::validate(&run).expect_err("refused").to_string();
    assert!(error.contains("use single or multi"), "{error}");
    run.mode = "multi".to_owned();
    run.consistency = Some("before_and_after".to_owned());
    suite::validate(&run).expect("multi-primary at BEFORE_AND_AFTER is a valid run");
    run.consistency = Some("SOMETIMES".to_owned());
    let error = suite::validate(&run).expect_err("refused").to_string();
    assert!(error.contains("is not a consistency level"), "{error}");
}
