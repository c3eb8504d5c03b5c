//! SVG plots (plotters' SVG backend: text is written as SVG `<text>` elements, so
//! nothing here needs a font file or fontconfig).
//!
//! - [`latency_svg`]: latency by percentile, the HdrHistogram plot: the x axis is
//!   `1 / (1 - percentile)` on a log scale (so 90%, 99%, 99.9% are evenly spaced), the
//!   y axis latency in milliseconds, log scale.
//! - [`sweep_svg`]: throughput, abort rate and p99 against contention, one line per
//!   workload (and repeat), the contention points evenly spaced on the x axis.

use std::path::Path;

use hdrhistogram::Histogram;
use plotters::prelude::*;

use crate::target::BenchError;

/// The line colours, in series order.
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];
/// Highest `1 / (1 - percentile)` plotted (99.999%).
const INVERSE_TAIL_MAX: f64 = 100_000.0;

fn plot_error(error: impl std::fmt::Display) -> BenchError {
    BenchError::Report(format!("cannot draw the plot: {error}"))
}

/// The (x, y) points of a latency-by-percentile curve: x = 1/(1-q), y in ms.
fn percentile_points(histogram: &Histogram<u64>) -> Vec<(f64, f64)> {
    #[allow(clippy::cast_precision_loss)] // latencies far below 2^52
    histogram
        .iter_quantiles(5)
        .map(|step| {
            let quantile = step.quantile_iterated_to();
            let x = if quantile >= 1.0 {
                INVERSE_TAIL_MAX
            } else {
                (1.0 / (1.0 - quantile)).min(INVERSE_TAIL_MAX)
            };
            (x, step.value_iterated_to() as f64 / 1000.0)
        })
        .collect()
}

fn percentile_label(x: f64) -> String {
    let percentile = 100.0 * (1.0 - 1.0 / x);
    if x < 1.5 {
        "0%".to_owned()
    } else if (percentile - percentile.round()).abs() < 1e-6 {
        format!("{percentile:.0}%")
    } else {
        let text = format!("{percentile:.4}");
        format!("{}%", text.trim_end_matches('0'))
    }
}

/// Writes latency by percentile for each named histogram (microseconds) to `path`.
pub fn latency_svg(
    path: &Path,
    title: &str,
    series: &[(&str, &Histogram<u64>)],
) -> Result<(), BenchError> {
    let curves: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .filter(|(_, histogram)| !histogram.is_empty())
        .map(|(name, histogram)| (*name, percentile_points(histogram)))
        .collect();
    let y_max = curves
        .iter()
        .flat_map(|(_, points)| points.iter().map(|point| point.1))
        .fold(0.01_f64, f64::max)
        * 1.5;
    let y_min = curves
        .iter()
        .flat_map(|(_, points)| points.iter().map(|point| point.1))
        .fold(y_max, f64::min)
        .max(0.001)
        / 1.5;
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (1.0..INVERSE_TAIL_MAX).log_scale(),
            (y_min..y_max).log_scale(),
        )
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_label_formatter(&|x| percentile_label(*x))
        .draw()
        .map_err(plot_error)?;
    for (index, (name, points)) in curves.into_iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(plot_error)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)
}

/// One line of a sweep plot: a figure per contention point.
#[derive(Clone, Debug)]
pub struct SweepSeries {
    /// The legend (workload and repeat).
    pub name: String,
    /// Commits per second.
    pub committed_per_s: Vec<f64>,
    /// Abort rate, percent.
    pub abort_rate_percent: Vec<f64>,
    /// Commit p99, milliseconds.
    pub p99_ms: Vec<f64>,
}

/// Picks one figure of a sweep line.
type Figure = fn(&SweepSeries) -> &Vec<f64>;

/// Writes throughput, abort rate and p99 against the contention points to `path`.
pub fn sweep_svg(
    path: &Path,
    title: &str,
    points: &[String],
    series: &[SweepSeries],
) -> Result<(), BenchError> {
    let root = SVGBackend::new(path, (1500, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let root = root.titled(title, ("sans-serif", 18)).map_err(plot_error)?;
    let panels = root.split_evenly((1, 3));
    let figures: [(&str, Figure); 3] = [
        ("committed / s", |s| &s.committed_per_s),
        ("abort rate (%)", |s| &s.abort_rate_percent),
        ("commit p99 (ms)", |s| &s.p99_ms),
    ];
    #[allow(clippy::cast_precision_loss)] // a handful of points
    let x_max = points.len().saturating_sub(1) as f64;
    for (panel, (name, figure)) in panels.iter().zip(figures) {
        let y_max = series
            .iter()
            .flat_map(|s| figure(s).iter().copied())
            .fold(0.0_f64, f64::max)
            .max(1e-3)
            * 1.15;
        let mut chart = ChartBuilder::on(panel)
            .caption(name, ("sans-serif", 16))
            .margin(14)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.3..x_max + 0.3, 0.0..y_max)
            .map_err(plot_error)?;
        let label = |x: &f64| {
            let index = x.round();
            if (x - index).abs() < 1e-6 && index >= 0.0 {
                #[allow(clippy::cast_sign_loss)] // checked non-negative
                let index = index as usize;
                points.get(index).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .x_desc("contention")
            .x_labels(points.len() * 4 + 1)
            .x_label_formatter(&label)
            .disable_x_mesh()
            .draw()
            .map_err(plot_error)?;
        for (index, line) in series.iter().enumerate() {
            let color = COLORS[index % COLORS.len()];
            #[allow(clippy::cast_precision_loss)] // a handful of points
            let data: Vec<(f64, f64)> = figure(line)
                .iter()
                .enumerate()
                .map(|(point, value)| (point as f64, *value))
                .collect();
            chart
                .draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))
                .map_err(plot_error)?
                .label(line.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    data.into_iter()
                        .map(|point| Circle::new(point, 3, color.filled())),
                )
                .map_err(plot_error)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(plot_error)?;
    }
    root.present().map_err(plot_error)
}
