//! A writer of the Prometheus text exposition format, version 0.0.4.
//!
//! ```text
//!   # HELP tutti_commit_latency_seconds A local transaction from its proposal ...
//!   # TYPE tutti_commit_latency_seconds histogram
//!   tutti_commit_latency_seconds_bucket{member="…",le="0.00001"} 0
//!   ...
//!   tutti_commit_latency_seconds_bucket{member="…",le="+Inf"} 12
//!   tutti_commit_latency_seconds_sum{member="…"} 0.0342
//!   tutti_commit_latency_seconds_count{member="…"} 12
//! ```
//!
//! Each family is written whole (its `# HELP`, its `# TYPE`, then every sample of it),
//! as the format requires. Label values are escaped (backslash, double quote, line
//! feed), and so is help text (backslash, line feed). Numbers are written in Rust's
//! shortest round-trip form, which never uses an exponent. This module knows nothing of
//! tutti: it must never decide what is exported, only how it is spelled.
//!
//! A small writer rather than the `prometheus-client` crate: the exported values are
//! snapshots read at scrape time from tables that already exist, which fits a writer
//! better than a registry of live metric objects, and the format is this small.

use std::fmt::Write as _;

use tutti_engine::metrics::HistogramSnapshot;

/// A metric family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (resets when the process restarts).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Cumulative buckets, a sum and a count.
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Labels of one sample, as (name, value) pairs.
pub type Labels<'a> = [(&'a str, &'a str)];

/// The text being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// An empty exposition.
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts a family: its help line and its type line.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        debug_assert!(valid_metric_name(name), "metric name {name:?}");
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.name());
    }

    /// One sample of a counter or a gauge.
    pub fn sample(&mut self, name: &str, labels: &Labels<'_>, value: u64) {
        self.line(name, labels, None, &value.to_string());
    }

    /// One sample whose value is not a whole number.
    pub fn sample_f64(&mut self, name: &str, labels: &Labels<'_>, value: f64) {
        self.line(name, labels, None, &format_f64(value));
    }

    /// A whole histogram for one label set: buckets (bounds in seconds), sum, count.
    pub fn histogram(&mut self, name: &str, labels: &Labels<'_>, histogram: &HistogramSnapshot) {
        let bucket = format!("{name}_bucket");
        for (bound_us, count) in histogram.cumulative() {
            let le = match bound_us {
                #[allow(clippy::cast_precision_loss)] // bounds are at most 6e7
                Some(micros) => format_f64(micros as f64 / 1e6),
                None => "+Inf".to_owned(),
            };
            self.line(&bucket, labels, Some(&le), &count.to_string());
        }
        self.sample_f64(
            &format!("{name}_sum"),
            labels,
            histogram.sum().as_secs_f64(),
        );
        self.sample(&format!("{name}_count"), labels, histogram.count());
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }

    fn line(&mut self, name: &str, labels: &Labels<'_>, le: Option<&str>, value: &str) {
        self.out.push_str(name);
        let le = le.map(|le| ("le", le));
        let mut all = labels.iter().copied().chain(le).peekable();
        if all.peek().is_some() {
            self.out.push('{');
            for (index, (label, label_value)) in all.enumerate() {
                debug_assert!(valid_label_name(label), "label name {label:?}");
                if index > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{label}=\"{}\"", escape_label_value(label_value));
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(value);
        self.out.push('\n');
    }
}

/// A float as the format reads it (Go's `ParseFloat`): plain decimal, or `NaN`/`±Inf`.
fn format_f64(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved).
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    !name.starts_with("__")
        && chars
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tutti_engine::metrics::LatencyHistogram;

    use super::*;

    #[test]
    fn a_family_is_help_then_type_then_samples() {
        let mut text = Exposition::new();
        text.family(
            "tutti_x_total",
            Kind::Counter,
            "Things.\nAnd a \\ backslash.",
        );
        text.sample("tutti_x_total", &[("member", "a")], 3);
        text.sample("tutti_x_total", &[], 4);
        assert_eq!(
            text.finish(),
            "# HELP tutti_x_total Things.\\nAnd a \\\\ backslash.\n\
             # TYPE tutti_x_total counter\n\
             tutti_x_total{member=\"a\"} 3\n\
             tutti_x_total 4\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut text = Exposition::new();
        text.sample("m", &[("error", "say \"no\"\\\nnow")], 1);
        assert_eq!(text.finish(), "m{error=\"say \\\"no\\\"\\\\\\nnow\"} 1\n");
    }

    #[test]
    fn a_histogram_has_cumulative_buckets_in_seconds_a_sum_and_a_count() {
        let histogram = LatencyHistogram::new();
        histogram.record(Duration::from_micros(7));
        histogram.record(Duration::from_millis(2));
        histogram.record(Duration::from_secs(100));
        let mut text = Exposition::new();
        text.histogram("h_seconds", &[("member", "a")], &histogram.snapshot());
        let text = text.finish();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "h_seconds_bucket{member=\"a\",le=\"0.00001\"} 1");
        assert!(lines.contains(&"h_seconds_bucket{member=\"a\",le=\"0.0025\"} 2"));
        assert!(lines.contains(&"h_seconds_bucket{member=\"a\",le=\"60\"} 2"));
        assert!(lines.contains(&"h_seconds_bucket{member=\"a\",le=\"+Inf\"} 3"));
        assert!(lines.contains(&"h_seconds_sum{member=\"a\"} 100.002007"));
        assert_eq!(lines.last(), Some(&"h_seconds_count{member=\"a\"} 3"));
    }

    #[test]
    fn floats_never_use_an_exponent() {
        assert_eq!(format_f64(0.00001), "0.00001");
        assert_eq!(format_f64(60.0), "60");
        assert_eq!(format_f64(f64::INFINITY), "+Inf");
        assert_eq!(format_f64(f64::NAN), "NaN");
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_metric_name("tutti_commit_latency_seconds"));
        assert!(!valid_metric_name("1abc"));
        assert!(!valid_metric_name("a-b"));
        assert!(valid_label_name("le"));
        assert!(!valid_label_name("__name__"));
        assert!(!valid_label_name(""));
    }
}
