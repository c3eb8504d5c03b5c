//! A real 3-member group serves Prometheus metrics and its health: the text parses (a
//! strict line check and the `prometheus-parse` crate), the tables and histograms show
//! what the writes did, `/health` says ONLINE, and a garbage request gets 400 without
//! stopping the endpoint.

mod support;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use prometheus_parse::{Scrape, Value};
use support::{wait_until, Group, WAIT};

/// A sample's labels, in order.
type Labels = Vec<(String, String)>;
/// One sample: name, labels, value.
type Sample = (String, Labels, f64);

/// Writes made through member 0: SETs and INCRs, one transaction each.
const COMMITS: usize = 12;

/// One HTTP exchange: sends `request` as is, returns (status, body).
fn exchange(address: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("the metrics endpoint accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream.write_all(request).expect("request sent");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer read");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .and_then(|length| length.parse().ok())
        .expect("a Content-Length");
    assert_eq!(body.len(), length, "the body has the announced length");
    (status, body.to_owned())
}

fn get(address: SocketAddr, path: &str) -> (u16, String) {
    exchange(
        address,
        format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n").as_bytes(),
    )
}

/// Checks the Prometheus text format 0.0.4 line by line, strictly: every line is a
/// HELP, a TYPE, or a sample `name{label="value",...} value`; every family is declared
/// once, before its samples, which are contiguous; names and labels are well formed and
/// values are floats; histogram buckets are cumulative and end at `+Inf` = `_count`.
/// Returns the samples as (name, labels, value).
fn validate(text: &str) -> Vec<Sample> {
    assert!(text.ends_with('\n'), "the text ends with a line feed");
    let mut types: HashMap<String, String> = HashMap::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current = String::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(metric_name(name), "HELP of a bad name: {line}");
            assert!(!help.is_empty(), "empty HELP: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name type");
            assert!(metric_name(name), "TYPE of a bad name: {line}");
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind),
                "unknown type: {line}"
            );
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "{name} declared twice"
            );
            if !current.is_empty() {
                finished.insert(std::mem::take(&mut current));
            }
            name.clone_into(&mut current);
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line: {line:?}"
        );
        let (name, labels, value) = sample(line);
        let family = family_of(&name, &types);
        assert_eq!(family, current, "{line} is outside its family's block");
        assert!(
            !finished.contains(&family),
            "{family} continued after another"
        );
        samples.push((name, labels, value));
    }
    check_histograms(&samples, &types);
    samples
}

/// The family a sample belongs to (a histogram's `_bucket`, `_sum`, `_count`).
fn family_of(name: &str, types: &HashMap<String, String>) -> String {
    if types.contains_key(name) {
        return name.to_owned();
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base).map(String::as_str) == Some("histogram") {
                return base.to_owned();
            }
        }
    }
    panic!("sample {name} has no TYPE");
}

fn metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses one sample line strictly.
fn sample(line: &str) -> Sample {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value: {line}"));
    let name = &line[..name_end];
    assert!(metric_name(name), "bad name: {line}");
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        loop {
            let start = chars.peek().map(|&(at, _)| at).expect("a label");
            let mut eq = None;
            for (at, c) in chars.by_ref() {
                if c == '=' {
                    eq = Some(at);
                    break;
                }
            }
            let eq = eq.unwrap_or_else(|| panic!("label without '=': {line}"));
            let label = &after[start..eq];
            assert!(
                !label.is_empty()
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !label.starts_with(|c: char| c.is_ascii_digit()),
                "bad label name {label:?}: {line}"
            );
            assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "unquoted: {line}");
            let mut value = String::new();
            loop {
                match chars.next().map(|(_, c)| c) {
                    Some('"') => break,
                    Some('\\') => match chars.next().map(|(_, c)| c) {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => panic!("bad escape {other:?}: {line}"),
                    },
                    Some('\n') | None => panic!("unterminated label value: {line}"),
                    Some(c) => value.push(c),
                }
            }
            labels.push((label.to_owned(), value));
            match chars.next() {
                Some((_, ',')) => {}
                Some((at, '}')) => {
                    rest = &after[at + 1..];
                    break;
                }
                other => panic!("expected ',' or '}}', got {other:?}: {line}"),
            }
        }
    }
    let value = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("one space before the value: {line}"));
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        number => number
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad value {number:?}: {line}")),
    };
    (name.to_owned(), labels, value)
}

fn check_histograms(samples: &[Sample], types: &HashMap<String, String>) {
    for (family, _) in types.iter().filter(|(_, kind)| *kind == "histogram") {
        let bucket = format!("{family}_bucket");
        let mut by_labels: HashMap<Labels, Vec<(f64, f64)>> = HashMap::new();
        for (name, labels, value) in samples.iter().filter(|(name, ..)| *name == bucket) {
            let le = labels.iter().find(|(label, _)| label == "le").map_or_else(
                || panic!("{name} without le"),
                |(_, le)| {
                    if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().expect("le")
                    }
                },
            );
            let others: Vec<_> = labels.iter().filter(|(l, _)| l != "le").cloned().collect();
            by_labels.entry(others).or_default().push((le, *value));
        }
        assert!(!by_labels.is_empty(), "{family} has no buckets");
        for (labels, buckets) in by_labels {
            assert!(
                buckets
                    .windows(2)
                    .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
                "{family} buckets are increasing and cumulative"
            );
            let last = buckets.last().expect("a bucket");
            assert!(last.0.is_infinite(), "{family} ends with +Inf");
            let count = samples
                .iter()
                .find(|(name, l, _)| *name == format!("{family}_count") && *l == labels)
                .map_or_else(|| panic!("{family}_count missing"), |(.., value)| *value);
            assert!(
                (last.1 - count).abs() < f64::EPSILON,
                "{family}: +Inf = _count"
            );
            assert!(
                samples
                    .iter()
                    .any(|(name, l, _)| *name == format!("{family}_sum") && *l == labels),
                "{family}_sum missing"
            );
        }
    }
}

/// The value of `name` with `labels` (a subset of the sample's labels).
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|sample| {
            sample.metric == name
                && labels
                    .iter()
                    .all(|(label, value)| sample.labels.get(label) == Some(*value))
        })
        .and_then(|sample| match &sample.value {
            Value::Counter(value) | Value::Gauge(value) | Value::Untyped(value) => Some(*value),
            Value::Histogram(buckets) => buckets
                .iter()
                .find(|bucket| bucket.less_than.is_infinite())
                .map(|bucket| bucket.count),
            Value::Summary(_) => None,
        })
}

fn scrape(address: SocketAddr) -> (Scrape, Vec<Sample>) {
    let (status, body) = get(address, "/metrics");
    assert_eq!(status, 200, "{body}");
    let strict = validate(&body);
    let scrape = Scrape::parse(body.lines().map(|line| Ok(line.to_owned())))
        .expect("prometheus-parse reads the text");
    (scrape, strict)
}

/// What member 0 shows after the writes it proposed.
fn check_member_zero(endpoint: SocketAddr, ids: &[String]) {
    let (scrape0, strict0) = scrape(endpoint);
    let me = [("member", ids[0].as_str())];
    #[allow(clippy::cast_precision_loss)]
    let commits = COMMITS as f64;
    let commit_count = value(&scrape0, "tutti_commit_latency_seconds_count", &me).expect("commit");
    assert!(commit_count >= commits, "{commit_count} commit samples");
    for histogram in [
        "tutti_ordering_latency_seconds",
        "tutti_certification_latency_seconds",
        "tutti_apply_latency_seconds",
    ] {
        let count = value(&scrape0, &format!("{histogram}_count"), &me).expect(histogram);
        assert!(count >= commits, "{histogram}: {count} samples");
        let inf = value(&scrape0, histogram, &me).expect("the histogram parses as one");
        assert!((inf - count).abs() < f64::EPSILON);
        let sum = value(&scrape0, &format!("{histogram}_sum"), &me).expect("sum");
        assert!(sum > 0.0 && sum < count * 60.0, "{histogram}: sum {sum}");
    }
    let proposed =
        value(&scrape0, "tutti_transactions_local_proposed_total", &me).expect("local proposed");
    assert!(proposed >= commits, "{proposed} proposed");
    for id in ids {
        let online = value(
            &scrape0,
            "tutti_member_state",
            &[("member", id.as_str()), ("state", "ONLINE")],
        );
        assert_eq!(online, Some(1.0), "member {id} is ONLINE");
        let offline = value(
            &scrape0,
            "tutti_member_state",
            &[("member", id.as_str()), ("state", "OFFLINE")],
        );
        assert_eq!(offline, Some(0.0));
    }
    for (index, peer) in ids.iter().enumerate().skip(1) {
        let labels = [("member", ids[0].as_str()), ("peer", peer.as_str())];
        let sent = value(&scrape0, "tutti_connection_sent_bytes_total", &labels)
            .unwrap_or_else(|| panic!("bytes sent to member {index}"));
        assert!(sent > 0.0, "bytes sent to member {index}");
    }
    let views = value(&scrape0, "tutti_group_view_changes_total", &me).expect("view changes");
    assert!(views >= 1.0, "{views} views installed");
    for name in [
        "tutti_group_view",
        "tutti_group_delivered_total",
        "tutti_group_commit_seqno",
        "tutti_watermark_seqno",
        "tutti_transactions_checked_total",
        "tutti_conflicts_detected_total",
        "tutti_connection_state",
        "tutti_connection_received_heartbeats_total",
        "tutti_member_weight",
    ] {
        assert!(
            strict0.iter().any(|(sample, ..)| sample == name),
            "{name} is exported"
        );
    }
}

#[test]
fn a_three_member_group_serves_metrics_and_health() {
    let mut group = Group::new(3, &[]);
    group.serve_metrics();
    for member in &mut group.members {
        member.start();
    }
    group.wait_all_online();
    let endpoints: Vec<SocketAddr> = group
        .members
        .iter()
        .map(|member| member.metrics.expect("a metrics address"))
        .collect();
    let ids: Vec<String> = group
        .members
        .iter()
        .map(|member| member.stat("member_id").expect("member_id"))
        .collect();

    let mut client = group.members[0].client();
    for index in 0..COMMITS / 2 {
        let key = format!("key-{index}");
        client
            .command(&[b"SET", key.as_bytes(), b"value"])
            .expect("SET");
        client.command(&[b"INCR", b"counter"]).expect("INCR");
    }

    check_member_zero(endpoints[0], &ids);
    #[allow(clippy::cast_precision_loss)]
    let commits = COMMITS as f64;

    // Every member certifies and applies every transaction.
    for (index, endpoint) in endpoints.iter().enumerate().skip(1) {
        let labels = [("member", ids[index].as_str())];
        wait_until(
            &format!("member {index} certified and applied the writes"),
            WAIT,
            || {
                let (scrape, _) = scrape(*endpoint);
                [
                    "tutti_certification_latency_seconds_count",
                    "tutti_apply_latency_seconds_count",
                ]
                .iter()
                .all(|name| value(&scrape, name, &labels).is_some_and(|count| count >= commits))
            },
        );
    }

    for endpoint in &endpoints {
        assert_eq!(get(*endpoint, "/health"), (200, "ONLINE\n".to_owned()));
    }
    assert_eq!(get(endpoints[0], "/nothing-here").0, 404);
    let (status, body) = exchange(endpoints[0], b"\x16\x03\x01 not http at all\r\n\r\n");
    assert_eq!(status, 400, "{body}");
    let (status, _) = exchange(endpoints[0], b"GET /metrics HTTP/9\r\n\r\n");
    assert_eq!(status, 400);
    assert_eq!(get(endpoints[0], "/health").0, 200, "still serving");
    let (status, body) = get(endpoints[0], "/metrics");
    assert_eq!(status, 200);
    validate(&body);
}

#[test]
fn a_metrics_port_in_use_fails_start_up_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address");
    let mut group = Group::new(1, &[]);
    group.members[0].metrics = Some(address);
    group.members[0].start();
    let code = {
        let child = group.members[0].child.as_mut().expect("started");
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not exit"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    group.members[0].child = None;
    assert_eq!(code, Some(1));
    let log = group.members[0].log_text();
    assert!(
        log.contains(&format!("cannot listen for metrics on {address}")),
        "{log}"
    );
}
