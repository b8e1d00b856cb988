//! `<out>/timeline.html`: one row per group, its phases (images, environment, readiness,
//! collection, tests, results, teardown) as bars on one shared time axis, so a reader sees
//! whether groups were balanced and where setup time went. Self-contained (inline SVG and
//! CSS, no script, no network).

use std::fmt::Write as _;

use super::phase::Phase;
use super::summary::{format_seconds, GroupSummary};

const WIDTH: f64 = 900.0;
const LABEL: f64 = 110.0;
const ROW: f64 = 28.0;
const AXIS: f64 = 30.0;

fn colour(phase: Phase) -> &'static str {
    match phase {
        Phase::Images => "#d9d9d9",
        Phase::Waiting => "#f0f0f0",
        Phase::Environment => "#8da0cb",
        Phase::Readiness => "#e5c494",
        Phase::Collection => "#a6d854",
        Phase::Tests => "#66c2a5",
        Phase::Results => "#ffd92f",
        Phase::Teardown => "#b3b3b3",
    }
}

fn esc(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// A "nice" tick step giving about eight ticks over `span` seconds.
fn tick_step(span: f64) -> f64 {
    let raw = span / 8.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// The self-contained HTML page.
pub fn render_timeline_html(groups: &[GroupSummary], title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>\
body{{font-family:system-ui,sans-serif;margin:1.5em;color:#222}}\
.grid{{stroke:#ddd;stroke-width:1}}.tick{{font-size:11px;text-anchor:middle;fill:#555}}\
.label{{font-size:12px;fill:#222}}.legend span{{margin-right:1.2em;font-size:13px}}\
.legend i{{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}}\
table{{border-collapse:collapse;margin-top:1em;font-size:13px}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}\
</style></head><body><h1>{title}</h1><p class=\"legend\">{legend}</p>{svg}\
<table><tr><th>group</th><th>tests</th><th>passed</th><th>failed</th><th>skipped</th><th>phases</th><th>status</th></tr>{rows}</table>\
</body></html>\n",
        title = esc(title),
        legend = legend(),
        svg = chart(groups),
        rows = table_rows(groups),
    )
}

/// The shared time axis: seconds from the run's start to pixels.
struct Axis {
    /// The last phase's end (seconds), at least 1 ms.
    end: f64,
}

impl Axis {
    fn of(groups: &[GroupSummary]) -> Axis {
        let end = groups
            .iter()
            .flat_map(|g| &g.phases)
            .map(|p| p.end)
            .filter(|e| e.is_finite())
            .fold(0.0f64, f64::max)
            .max(0.001);
        Axis { end }
    }

    fn x(&self, t: f64) -> f64 {
        LABEL + (t.clamp(0.0, self.end) / self.end) * (WIDTH - LABEL - 10.0)
    }
}

/// The SVG: grid lines and ticks, then one row of phase bars per group.
fn chart(groups: &[GroupSummary]) -> String {
    let axis = Axis::of(groups);
    let height = AXIS + ROW * groups.len() as f64 + 10.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\">"
    );
    let step = tick_step(axis.end);
    let mut t = 0.0;
    while t <= axis.end + step * 1e-9 {
        let x = axis.x(t);
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{AXIS}\" x2=\"{x:.1}\" y2=\"{height}\" class=\"grid\"/><text x=\"{x:.1}\" y=\"{}\" class=\"tick\">{}</text>",
            AXIS - 8.0,
            esc(&format_seconds(t))
        );
        t += step;
    }
    for (row, group) in groups.iter().enumerate() {
        group_row(&mut svg, &axis, AXIS + ROW * row as f64, group);
    }
    svg.push_str("</svg>");
    svg
}

/// One group's label and phase bars, at height `y`.
fn group_row(svg: &mut String, axis: &Axis, y: f64, group: &GroupSummary) {
    let _ = write!(
        svg,
        "<text x=\"4\" y=\"{:.1}\" class=\"label\">group {} ({})</text>",
        y + ROW * 0.65,
        group.group,
        esc(group.status.split(':').next().unwrap_or(""))
    );
    for phase in &group.phases {
        let (x0, x1) = (axis.x(phase.start), axis.x(phase.end));
        let _ = write!(
            svg,
            "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>group {}: {} {} (from {} to {})</title></rect>",
            y + 4.0,
            (x1 - x0).max(1.0),
            ROW - 8.0,
            colour(phase.phase),
            group.group,
            phase.phase,
            esc(&format_seconds(phase.end - phase.start)),
            esc(&format_seconds(phase.start)),
            esc(&format_seconds(phase.end)),
        );
    }
}

/// A colour swatch per phase.
fn legend() -> String {
    let mut legend = String::new();
    for phase in Phase::ALL {
        let _ = write!(
            legend,
            "<span><i style=\"background:{}\"></i>{phase}</span>",
            colour(phase)
        );
    }
    legend
}

/// The table under the chart: one row per group.
fn table_rows(groups: &[GroupSummary]) -> String {
    let mut rows = String::new();
    for g in groups {
        let per_phase: Vec<String> = g
            .phases
            .iter()
            .map(|p| format!("{} {}", p.phase, format_seconds(p.seconds())))
            .collect();
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if g.engine.is_empty() {
                g.group.to_string()
            } else {
                format!("{} on {}", g.group, esc(&g.engine))
            },
            g.tests,
            g.passed,
            g.failed + g.errors,
            g.skipped,
            per_phase.join(", "),
            esc(&g.status)
        );
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::phase::PhaseSpan;

    fn phase(phase: Phase, start: f64, end: f64) -> PhaseSpan {
        PhaseSpan { phase, start, end }
    }

    #[test]
    fn bars_share_one_axis_and_page_is_self_contained() {
        let groups = vec![
            GroupSummary {
                group: 1,
                status: "ok".into(),
                phases: vec![
                    phase(Phase::Environment, 0.0, 10.0),
                    phase(Phase::Tests, 10.0, 100.0),
                ],
                ..GroupSummary::default()
            },
            GroupSummary {
                group: 2,
                status: "crashed: <oom>".into(),
                phases: vec![phase(Phase::Environment, 0.0, 50.0)],
                ..GroupSummary::default()
            },
        ];
        let html = render_timeline_html(&groups, "run <1>");
        assert!(html.contains("<title>run &lt;1&gt;</title>"));
        assert!(html.contains("crashed: &lt;oom&gt;"));
        // Group 2's environment bar is half the axis (the run ends at 100 s).
        let axis = WIDTH - LABEL - 10.0;
        assert!(
            html.contains(&format!(
                "x=\"{LABEL:.1}\" y=\"62.0\" width=\"{:.1}\"",
                axis / 2.0
            )),
            "{html}"
        );
        assert!(
            !html.contains("http://")
                || !html
                    .replace("http://www.w3.org/2000/svg", "")
                    .contains("http")
        );
        assert!(!html.contains("<script"));
    }

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(tick_step(100.0), 20.0);
        assert_eq!(tick_step(7.0), 1.0);
    }
}
