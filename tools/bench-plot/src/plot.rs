//! The SVG plots: codec throughput against payload size, the RTT distributions, and goodput
//! against loss.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::codec::{self, METHODS, SIZES};
use crate::e2e::{self, CLIENTS};
use crate::loss::{self, STACKS};

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Throughput (GB/s, log) against payload size (bytes, log), a line per method.
pub(crate) fn throughput(results: &codec::Results, file: &Path) -> DrawResult {
    let root = SVGBackend::new(file, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = results.gbps.values().flat_map(|m| m.values()).fold(1.0f64, |a, &b| a.max(b)) * 1.5;
    let mut chart = ChartBuilder::on(&root)
        .caption("Encode + decode throughput (one run)", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((48f64..90_000f64).log_scale(), (0.01f64..max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("payload bytes")
        .y_desc("GB/s of payload")
        .x_labels(6)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v}"))
        .draw()?;
    for (index, (method, label)) in METHODS.iter().enumerate() {
        let points: Vec<(f64, f64)> =
            SIZES.iter().filter_map(|&s| Some((s as f64, results.get(method, s)?))).collect();
        if points.is_empty() {
            continue;
        }
        let color = Palette99::pick(index).to_rgba();
        let width = if method.starts_with("framelink") { 3 } else { 1 };
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(width)))?
            .label(*label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width)));
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    }
    legend_and_write(&mut chart, &root, SeriesLabelPosition::LowerRight)
}

/// The cumulative RTT distributions: raw ping-pong and 1 to 1,000 framelink clients.
pub(crate) fn rtt(results: &e2e::Results, file: &Path) -> DrawResult {
    let mut lines = vec![("raw std TCP ping-pong".to_string(), results.distribution("raw-ping"))];
    for n in CLIENTS {
        lines.push((format!("framelink, {n} client(s)"), results.distribution(&format!("clients-{n}"))));
    }
    lines.retain(|(_, points)| !points.is_empty());
    let all = lines.iter().flat_map(|(_, p)| p.iter().map(|&(_, us)| us));
    let (lo, hi) = all.fold((f64::MAX, 1.0f64), |(lo, hi), us| (lo.min(us), hi.max(us)));
    let root = SVGBackend::new(file, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Round-trip time distribution, 64 B over TCP loopback (one run)", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((lo.max(0.1) * 0.8..hi * 1.25).log_scale(), 0f64..100f64)?;
    chart
        .configure_mesh()
        .x_desc("round trip, µs")
        .y_desc("% of pings at most this")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    for (index, (label, points)) in lines.into_iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        let series = points.into_iter().map(|(percent, us)| (us, percent));
        chart
            .draw_series(LineSeries::new(series, color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    legend_and_write(&mut chart, &root, SeriesLabelPosition::LowerRight)
}

/// Goodput (MB/s, log) against loss (percent), a line per stack and delay: a colour per stack,
/// thick lines for the shortest delay, thin ones for the longer.
pub(crate) fn loss_goodput(results: &loss::Results, file: &Path) -> DrawResult {
    let losses = results.losses();
    let values = results.cells.values().map(|c| c.mb_per_s).filter(|&v| v > 0.0);
    let (lo, hi) = values.fold((f64::MAX, 0.1f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let lo = if lo == f64::MAX { 0.01 } else { lo * 0.6 };
    let max_loss = losses.last().copied().unwrap_or(20).max(1) as f64;
    let root = SVGBackend::new(file, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Goodput through a lossy relay on loopback (one run)", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..max_loss + 0.5, (lo..hi * 2.0).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("datagrams lost each way, %")
        .y_desc("goodput, MB/s")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v}"))
        .draw()?;
    for (d, delay) in results.delays().into_iter().enumerate() {
        for (s, (stack, label)) in STACKS.iter().enumerate() {
            let points: Vec<(f64, f64)> = losses
                .iter()
                .filter_map(|&l| Some((f64::from(l), results.get(stack, delay, l)?.mb_per_s)))
                .filter(|&(_, v)| v > 0.0)
                .collect();
            if points.is_empty() {
                continue;
            }
            let color = Palette99::pick(s).to_rgba();
            let width = if d == 0 { 3 } else { 1 };
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(width)))?
                .label(format!("{label}, {delay} ms each way"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width)));
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
        }
    }
    legend_and_write(&mut chart, &root, SeriesLabelPosition::LowerLeft)
}

/// Every plot's ending: the legend at `position`, then the file written.
fn legend_and_write<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    root: &DrawingArea<DB, Shift>,
    position: SeriesLabelPosition,
) -> DrawResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
