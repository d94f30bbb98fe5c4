//! Charts as inline SVG, drawn on the server: no script, no font, no network, and the numbers
//! stay readable by a test or a screen reader. Each chart is a `<figure>` whose `data-*`
//! attributes carry its name, total and largest value; each bar carries its slot's start and
//! value, with a `<title>` a browser shows on hover.

use std::fmt::Write;

use super::html::esc;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 140.0;
/// Room on the left for the scale's label.
const LEFT: f64 = 48.0;

/// One series of a chart: a name for the legend and CSS, and a value per slot.
#[derive(Debug)]
pub struct Series<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub values: Vec<f64>,
}

/// A bar chart of one or more series over the same slots (`starts`, Unix seconds), bars of
/// several series side by side within a slot.
pub fn bars(id: &str, title: &str, starts: &[i64], series: &[Series<'_>]) -> String {
    let max = series.iter().flat_map(|s| s.values.iter().copied()).fold(0.0_f64, f64::max);
    let total: f64 = series.iter().flat_map(|s| s.values.iter()).sum();
    let slots = starts.len().max(1) as f64;
    let slot_width = (WIDTH - LEFT) / slots;
    let bar_width = (slot_width / series.len().max(1) as f64 * 0.85).max(0.5);
    let mut svg = String::new();
    for (index, one) in series.iter().enumerate() {
        for (slot, (&at, &value)) in starts.iter().zip(&one.values).enumerate() {
            let height = if max > 0.0 { value / max * (HEIGHT - 10.0) } else { 0.0 };
            let x = LEFT + slot as f64 * slot_width + index as f64 * bar_width;
            let _ = write!(
                svg,
                r#"<rect class="bar {name}" x="{x:.1}" y="{y:.1}" width="{bar_width:.1}" height="{height:.1}" data-at="{at}" data-value="{value}"><title>{time}: {shown} {label}</title></rect>"#,
                name = esc(one.name),
                y = HEIGHT - height,
                time = time(at),
                shown = number(value),
                label = esc(one.label),
            );
        }
    }
    let legend: String =
        series.iter().map(|s| format!(r#"<span class="key {}">{}</span>"#, esc(s.name), esc(s.label))).collect();
    let (first, last) = (starts.first().copied().unwrap_or(0), starts.last().copied().unwrap_or(0));
    format!(
        r#"<figure class="chart" id="{id}" data-chart="{id}" data-total="{total}" data-max="{max}" data-slots="{slots}">
<figcaption>{title} <span class="legend">{legend}</span></figcaption>
<svg viewBox="0 0 {WIDTH} {view_height}" role="img" aria-label="{title}, largest {shown_max}" preserveAspectRatio="none">
<line class="axis" x1="{LEFT}" y1="{HEIGHT}" x2="{WIDTH}" y2="{HEIGHT}"/>
<text class="scale" x="{scale_x}" y="12" text-anchor="end">{shown_max}</text><text class="scale" x="{scale_x}" y="{HEIGHT}" text-anchor="end">0</text>
{svg}
<text class="scale" x="{LEFT}" y="{label_y}">{from}</text><text class="scale" x="{WIDTH}" y="{label_y}" text-anchor="end">{to}</text>
</svg></figure>"#,
        id = esc(id),
        title = esc(title),
        shown_max = number(max),
        slots = starts.len(),
        view_height = HEIGHT + 18.0,
        scale_x = LEFT - 4.0,
        label_y = HEIGHT + 14.0,
        from = time(first),
        to = time(last),
    )
}

/// Horizontal bars for counts by name (status codes, close codes, applications).
pub fn ranking(id: &str, title: &str, rows: &[(String, u64)], empty: &str) -> String {
    if rows.is_empty() {
        return format!(
            r#"<section class="ranking" id="{id}" data-chart="{id}" data-total="0"><h3>{title}</h3><p class="hint">{empty}</p></section>"#,
            id = esc(id),
            title = esc(title),
            empty = esc(empty),
        );
    }
    let max = rows.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
    let total: u64 = rows.iter().map(|(_, n)| n).sum();
    let lines: String = rows
        .iter()
        .map(|(name, n)| {
            format!(
                r#"<li data-name="{name}" data-value="{n}"><span class="name">{name}</span><span class="meter"><span style="width:{pct}%"></span></span><span class="count">{n}</span></li>"#,
                name = esc(name),
                pct = n * 100 / max,
            )
        })
        .collect();
    format!(
        r#"<section class="ranking" id="{id}" data-chart="{id}" data-total="{total}"><h3>{title}</h3><ol class="plain">{lines}</ol></section>"#,
        id = esc(id),
        title = esc(title),
    )
}

/// A number as people read it: whole when it is, else with two decimals, or three significant
/// digits when smaller (a week's slot of two hours makes small rates). `data-*` attributes
/// carry the exact value instead.
pub fn number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else if value.abs() >= 0.1 {
        format!("{value:.2}")
    } else {
        format!("{value:.2e}").parse::<f64>().map_or_else(|_| value.to_string(), |rounded| rounded.to_string())
    }
}

/// `Mon 12 14:05` (UTC) for a Unix time in seconds.
pub fn time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let seconds = unix.rem_euclid(86_400);
    let (_, month, day) = civil_date(days);
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.get(month.saturating_sub(1) as usize).copied().unwrap_or("?");
    format!("{month} {day} {:02}:{:02}", seconds / 3600, seconds % 3600 / 60)
}

/// Year, month (1-12) and day of a count of days since 1970-01-01, in the proleptic Gregorian
/// calendar: the 400-year cycle counted from 0000-03-01, so that a leap day ends its year.
fn civil_date(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_numbers_read_well() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(time(1_764_684_300), "Dec 2 14:05");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(12.0 / 7200.0), "0.00167");
    }

    #[test]
    fn a_chart_carries_its_numbers() {
        let chart = bars(
            "open",
            "Open <connections>",
            &[0, 60],
            &[Series { name: "open", label: "open", values: vec![1.0, 3.0] }],
        );
        assert!(chart.contains(r#"data-total="4""#) && chart.contains(r#"data-max="3""#), "{chart}");
        assert!(chart.contains(r#"data-at="60" data-value="3""#), "{chart}");
        assert!(chart.contains("Open &lt;connections&gt;"), "escaped: {chart}");
        let empty = ranking("codes", "Closes", &[], "None.");
        assert!(empty.contains(r#"data-total="0""#));
    }
}
