//! The overview's hourly chart: one stacked bar per hour of how actions ended, as SVG rectangles (no
//! script, no inline style: the page's CSP allows it), each bar with a title that reads out its counts.

use std::collections::HashMap;

use ledger_core::activity::Tally;
use storage::HourCount;

/// The tallies stacked in a bar, bottom first, with their legend words: how actions ended (each action
/// ends once; being held for an approval is not an ending).
pub const STACKED: [(Tally, &str); 6] = [
    (Tally::Completed, "completed"),
    (Tally::Denied, "denied"),
    (Tally::Failed, "failed"),
    (Tally::Rejected, "rejected"),
    (Tally::Expired, "expired"),
    (Tally::Previewed, "previewed"),
];

/// One coloured piece of a bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub y: String,
    pub height: String,
    /// The CSS class that colours it (`t-denied`, …).
    pub class: String,
}

/// One hour's bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub x: String,
    pub width: String,
    /// E.g. `13:00 UTC: 12 requested, 10 completed, 2 denied`.
    pub title: String,
    /// The hour's label under the axis (every sixth hour), e.g. `13h`.
    pub label: Option<String>,
    pub segments: Vec<Segment>,
}

/// The whole chart.
#[derive(Debug, Clone, PartialEq)]
pub struct HourlyChart {
    pub width: u32,
    pub height: u32,
    /// Where the bars stand (the axis).
    pub base: u32,
    pub bars: Vec<Bar>,
    /// The tallest bar's total: the scale.
    pub max: u64,
    /// What it shows, for screen readers.
    pub description: String,
}

/// The chart of `hours` (the counts of the hours asked for), one bar per hour of `hour_names`, oldest first.
pub fn hourly_chart(hour_names: &[String], hours: &[HourCount]) -> HourlyChart {
    let (width, height, base) = (720u32, 160u32, 140u32);
    let mut counts: HashMap<(&str, Tally), u64> = HashMap::new();
    for count in hours {
        *counts.entry((count.hour.as_str(), count.tally)).or_default() += count.count;
    }
    let count = |hour: &str, tally: Tally| counts.get(&(hour, tally)).copied().unwrap_or(0);
    let stacked_total = |hour: &str| STACKED.iter().map(|(tally, _)| count(hour, *tally)).sum::<u64>();
    let max = hour_names.iter().map(|h| stacked_total(h)).max().unwrap_or(0);
    let slot = f64::from(width) / hour_names.len().max(1) as f64;
    let scale = if max == 0 {
        0.0
    } else {
        f64::from(base - 4) / max as f64
    };
    let bars = hour_names
        .iter()
        .enumerate()
        .map(|(index, hour)| {
            let mut top = f64::from(base);
            let segments = STACKED
                .iter()
                .filter(|(tally, _)| count(hour, *tally) > 0)
                .map(|(tally, _)| {
                    let tall = count(hour, *tally) as f64 * scale;
                    top -= tall;
                    Segment {
                        y: format!("{top:.1}"),
                        height: format!("{tall:.1}"),
                        class: format!("t-{}", tally.as_str()),
                    }
                })
                .collect();
            let said: Vec<String> = std::iter::once((Tally::Requested, "requested"))
                .chain(STACKED)
                .filter(|(tally, _)| count(hour, *tally) > 0)
                .map(|(tally, words)| format!("{} {words}", count(hour, tally)))
                .collect();
            let clock = hour.get(11..13).unwrap_or("??");
            Bar {
                x: format!("{:.1}", index as f64 * slot + 1.0),
                width: format!("{:.1}", (slot - 2.0).max(1.0)),
                title: match said.is_empty() {
                    true => format!("{clock}:00 UTC: nothing"),
                    false => format!("{clock}:00 UTC: {}", said.join(", ")),
                },
                label: (index % 6 == 0).then(|| format!("{clock}h")),
                segments,
            }
        })
        .collect();
    let total: u64 = hour_names.iter().map(|h| stacked_total(h)).sum();
    HourlyChart {
        width,
        height,
        base,
        bars,
        max,
        description: format!(
            "How actions ended, per hour, over the last {} hours: {total} in all, at most {max} in one hour",
            hour_names.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(hour: &str, tally: Tally, count: u64) -> HourCount {
        HourCount {
            hour: hour.into(),
            tally,
            count,
        }
    }

    #[test]
    fn bars_stack_their_tallies_and_the_tallest_reaches_the_top() {
        let hours = ["2026-01-01T10".to_owned(), "2026-01-01T11".to_owned()];
        let chart = hourly_chart(
            &hours,
            &[
                count("2026-01-01T10", Tally::Requested, 5),
                count("2026-01-01T10", Tally::Completed, 3),
                count("2026-01-01T10", Tally::Denied, 1),
                count("2026-01-01T11", Tally::Completed, 8),
            ],
        );
        assert_eq!(chart.max, 8);
        assert_eq!(chart.bars.len(), 2);
        let first = &chart.bars[0];
        assert_eq!(first.title, "10:00 UTC: 5 requested, 3 completed, 1 denied");
        let classes: Vec<&str> = first.segments.iter().map(|s| s.class.as_str()).collect();
        assert_eq!(classes, ["t-completed", "t-denied"]);
        // 8 fills the height above the axis less a margin of 4: 136 units; 3 of 8 is 51, 1 of 8 is 17.
        assert_eq!(
            (first.segments[0].y.as_str(), first.segments[0].height.as_str()),
            ("89.0", "51.0")
        );
        assert_eq!(
            (first.segments[1].y.as_str(), first.segments[1].height.as_str()),
            ("72.0", "17.0")
        );
        assert_eq!(chart.bars[1].segments[0].y, "4.0");
        assert_eq!(first.label.as_deref(), Some("10h"));
        assert_eq!(chart.bars[1].label, None);
    }

    #[test]
    fn an_empty_day_draws_empty_bars() {
        let hours = vec!["2026-01-01T10".to_owned()];
        let chart = hourly_chart(&hours, &[]);
        assert_eq!(chart.max, 0);
        assert!(chart.bars[0].segments.is_empty());
        assert_eq!(chart.bars[0].title, "10:00 UTC: nothing");
    }
}
