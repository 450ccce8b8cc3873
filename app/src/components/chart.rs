//! A small SVG line chart: training curves, endpoint and function metrics,
//! simulations. Drawn on the server too, so the charts are there before the
//! wasm arrives; in the browser a cursor follows the pointer and the line
//! under the chart reads every series' value there (the latest point until
//! then). Time series get an axis of UTC clock times.

use leptos::prelude::*;

#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    /// CSS class for the line's colour: series-a, series-b.
    pub class: &'static str,
    pub points: Vec<(f64, f64)>,
}

/// The data's extent, widened when flat so a line is still drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    pub x0: f64,
    pub x1: f64,
    pub y0: f64,
    pub y1: f64,
}

pub fn bounds(series: &[Series], y_from_zero: bool) -> Option<Bounds> {
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter().copied()).filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
    if all.is_empty() {
        return None;
    }
    let fold = |f: fn(f64, f64) -> f64, init: f64, pick: fn(&(f64, f64)) -> f64| all.iter().map(pick).fold(init, f);
    let (mut x0, mut x1) = (fold(f64::min, f64::INFINITY, |p| p.0), fold(f64::max, f64::NEG_INFINITY, |p| p.0));
    let (mut y0, mut y1) = (fold(f64::min, f64::INFINITY, |p| p.1), fold(f64::max, f64::NEG_INFINITY, |p| p.1));
    if y_from_zero {
        y0 = y0.min(0.0);
    }
    if x1 - x0 < 1e-12 {
        x0 -= 0.5;
        x1 += 0.5;
    }
    if y1 - y0 < 1e-12 {
        y0 -= 0.5;
        y1 += 0.5;
    }
    Some(Bounds { x0, x1, y0, y1 })
}

/// The polyline's `points` attribute in a `width`×`height` box (y grows down).
pub fn polyline(points: &[(f64, f64)], b: Bounds, width: f64, height: f64) -> String {
    points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(x, y)| {
            let px = (x - b.x0) / (b.x1 - b.x0) * width;
            let py = height - (y - b.y0) / (b.y1 - b.y0) * height;
            format!("{px:.1},{py:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn tick(v: f64, percent: bool) -> String {
    if percent {
        format!("{:.0} %", v * 100.0)
    } else if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

const W: f64 = 320.0;
const H: f64 = 150.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 20.0;

/// What the x values are.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum XAxis {
    /// Plain numbers (epochs, steps, simulated minutes), labelled `x_label`.
    #[default]
    Plain,
    /// Unix seconds: the axis shows UTC clock times, the readout the date.
    Time,
}

/// Ticks for a time axis from `x0` to `x1` (unix seconds): whole steps of a
/// minute to a day, at most `max` of them, labelled with the clock time (the
/// date at midnight).
pub fn time_ticks(x0: f64, x1: f64, max: usize) -> Vec<(f64, String)> {
    const STEPS: [i64; 12] = [60, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 604_800];
    let (a, b) = (x0.ceil() as i64, x1.floor() as i64);
    if b < a || max == 0 {
        return Vec::new();
    }
    let step = STEPS.iter().copied().find(|s| ((b - a) / s + 1) as usize <= max).unwrap_or(604_800);
    let first = a.div_euclid(step) * step + if a.rem_euclid(step) == 0 { 0 } else { step };
    (0..)
        .map(|i| first + i * step)
        .take_while(|t| *t <= b)
        .map(|t| {
            let label = if t.rem_euclid(86_400) == 0 { super::date_time(t)[5..10].to_string() } else { super::clock(t) };
            (t as f64, label)
        })
        .collect()
}

/// The x closest to `x` among `xs` (sorted), if any.
pub fn nearest(xs: &[f64], x: f64) -> Option<f64> {
    let i = xs.partition_point(|v| *v < x);
    [i.checked_sub(1), Some(i)]
        .into_iter()
        .flatten()
        .filter_map(|i| xs.get(i).copied())
        .min_by(|a, b| (a - x).abs().total_cmp(&(b - x).abs()))
}

/// What the readout says at `x`: the x as the axis names it, then each
/// series' value there ("—" where it has none).
pub fn readout(series: &[Series], x: f64, axis: XAxis, x_label: &str, percent: bool) -> (String, Vec<(String, &'static str, String)>) {
    let at = match axis {
        XAxis::Time => format!("{} UTC", super::date_time(x as i64)),
        XAxis::Plain => format!("{x_label} {}", plain(x)),
    };
    let values = series
        .iter()
        .map(|s| {
            let v = s.points.iter().find(|p| p.0 == x).map(|p| tick(p.1, percent)).unwrap_or_else(|| "—".into());
            (s.name.clone(), s.class, v)
        })
        .collect();
    (at, values)
}

fn plain(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[component]
pub fn LineChart(
    #[prop(into)] title: String,
    series: Vec<Series>,
    #[prop(into)] x_label: String,
    #[prop(optional)] percent: bool,
    /// Unix-second x values: clock times on the axis and in the readout.
    #[prop(optional)]
    time_axis: bool,
) -> impl IntoView {
    let axis = if time_axis { XAxis::Time } else { XAxis::Plain };
    let points: usize = series.iter().map(|s| s.points.len()).sum();
    let Some(b) = bounds(&series, percent) else {
        return view! {
            <figure class="chart" data-chart=title.clone() data-points="0">
                <figcaption>{title.clone()}</figcaption>
                <p class="muted chart-empty">"No data yet."</p>
            </figure>
        }
        .into_any();
    };
    let (b, percent) = if percent { (Bounds { y0: 0.0, y1: b.y1.max(1.0), ..b }, true) } else { (b, false) };
    let plot_w = W - LEFT - 8.0;
    let plot_h = H - BOTTOM - 8.0;
    let to_px = move |x: f64| (x - b.x0) / (b.x1 - b.x0) * plot_w;
    let lines = series
        .iter()
        .map(|s| {
            let pts = polyline(&s.points, b, plot_w, plot_h);
            let dots = if s.points.len() <= 30 {
                s.points
                    .iter()
                    .map(|(x, y)| {
                        let cx = to_px(*x);
                        let cy = plot_h - (y - b.y0) / (b.y1 - b.y0) * plot_h;
                        view! { <circle class=s.class cx=format!("{cx:.1}") cy=format!("{cy:.1}") r="2.5"/> }
                    })
                    .collect_view()
                    .into_any()
            } else {
                ().into_any()
            };
            view! { <polyline class=format!("line {}", s.class) points=pts/>{dots} }
        })
        .collect_view();
    let legend = series
        .iter()
        .map(|s| view! { <span class=format!("legend {}", s.class)>{s.name.clone()}</span> })
        .collect_view();
    let mid = (b.y0 + b.y1) / 2.0;
    let x_ticks: Vec<(f64, String)> = match axis {
        XAxis::Time => time_ticks(b.x0, b.x1, 5),
        XAxis::Plain => vec![(b.x0, plain(b.x0)), (b.x1, format!("{} {x_label}", plain(b.x1)))],
    };
    let x_ticks = x_ticks
        .into_iter()
        .map(|(x, label)| {
            let px = LEFT + to_px(x);
            let anchor = if px < LEFT + 12.0 { "start" } else if px > W - 20.0 { "end" } else { "middle" };
            view! {
                <line class="tick" x1=px y1=8.0 + plot_h x2=px y2=11.0 + plot_h/>
                <text x=px y=H - 4.0 text-anchor=anchor>{label}</text>
            }
        })
        .collect_view();
    // Every x of every series, for the cursor to snap to.
    let mut xs: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).filter(|x| x.is_finite()).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let last = xs.last().copied();
    let hover = RwSignal::new(None::<f64>);
    let series = StoredValue::new(series);
    let x_label = StoredValue::new(x_label);
    let xs = StoredValue::new(xs);
    let svg = NodeRef::<leptos::svg::Svg>::new();
    let on_move = move |ev: leptos::ev::MouseEvent| {
        #[cfg(feature = "hydrate")]
        if let Some(el) = svg.get_untracked() {
            let rect = el.get_bounding_client_rect();
            if rect.width() > 0.0 {
                let view_x = (f64::from(ev.client_x()) - rect.left()) * W / rect.width();
                let x = b.x0 + (view_x - LEFT) / plot_w * (b.x1 - b.x0);
                hover.set(xs.with_value(|xs| nearest(xs, x)));
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (ev, svg, xs);
    };
    let shown = move || hover.get().or(last);
    let (data_title, caption) = (title.clone(), title.clone());
    view! {
        <figure class="chart" data-chart=data_title data-points=points>
            <figcaption>{caption}<span class="legends">{legend}</span></figcaption>
            <svg node_ref=svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=title
                on:mousemove=on_move on:mouseleave=move |_| hover.set(None)>
                <g class="axis">
                    <text x=LEFT - 4.0 y="12" text-anchor="end">{tick(b.y1, percent)}</text>
                    <text x=LEFT - 4.0 y=8.0 + plot_h / 2.0 + 4.0 text-anchor="end">{tick(mid, percent)}</text>
                    <text x=LEFT - 4.0 y=8.0 + plot_h text-anchor="end">{tick(b.y0, percent)}</text>
                    {x_ticks}
                    <line x1=LEFT y1="8" x2=LEFT y2=8.0 + plot_h/>
                    <line x1=LEFT y1=8.0 + plot_h x2=W - 8.0 y2=8.0 + plot_h/>
                    <line class="grid" x1=LEFT y1=8.0 + plot_h / 2.0 x2=W - 8.0 y2=8.0 + plot_h / 2.0/>
                </g>
                <g transform=format!("translate({LEFT},8)")>
                    {lines}
                    {move || hover.get().map(|x| {
                        let px = to_px(x);
                        view! { <line class="cursor" x1=px y1="0" x2=px y2=plot_h/> }
                    })}
                </g>
                // Catches the pointer over the whole plot.
                <rect class="hover-area" x="0" y="0" width=W height=H/>
            </svg>
            <p class="chart-readout" aria-live="polite">
                {move || shown().map(|x| {
                    let (at, values) = series.with_value(|s| readout(s, x, axis, &x_label.get_value(), percent));
                    view! {
                        <span class="readout-at">{if hover.get().is_some() { at } else { format!("latest · {at}") }}</span>
                        {values.into_iter().map(|(name, class, v)| view! {
                            <span class=format!("readout-value legend {class}")>{format!("{name} {v}")}</span>
                        }).collect_view()}
                    }
                })}
            </p>
        </figure>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(points: Vec<(f64, f64)>) -> Series {
        Series { name: "x".into(), class: "series-a", points }
    }

    #[test]
    fn bounds_cover_every_series_and_widen_flat_data() {
        let b = bounds(&[s(vec![(1.0, 2.0), (3.0, 0.5)]), s(vec![(2.0, 4.0)])], false).unwrap();
        assert_eq!(b, Bounds { x0: 1.0, x1: 3.0, y0: 0.5, y1: 4.0 });
        let flat = bounds(&[s(vec![(1.0, 1.0)])], false).unwrap();
        assert!(flat.x1 > flat.x0 && flat.y1 > flat.y0);
        assert_eq!(bounds(&[s(vec![])], false), None);
        assert_eq!(bounds(&[s(vec![(0.0, f64::NAN)])], false), None);
    }

    #[test]
    fn a_time_axis_has_clock_times_at_whole_steps() {
        // 14:02:30 to 15:01:00 UTC: ticks every 15 minutes.
        let t0 = 1_764_597_750.0;
        let ticks = time_ticks(t0, t0 + 3510.0, 5);
        let labels: Vec<&str> = ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["14:15", "14:30", "14:45", "15:00"]);
        assert!(ticks.iter().all(|t| t.0 as i64 % 900 == 0));
        // A day: six-hourly, with the date at midnight.
        let day = time_ticks(1_764_547_200.0 - 3600.0, 1_764_547_200.0 + 82_800.0, 5);
        let labels: Vec<&str> = day.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["12-01", "06:00", "12:00", "18:00"]);
        assert!(time_ticks(10.0, 5.0, 5).is_empty());
    }

    #[test]
    fn the_readout_snaps_to_the_nearest_point_and_reads_every_series() {
        let xs = [0.0, 60.0, 120.0];
        assert_eq!(nearest(&xs, 80.0), Some(60.0));
        assert_eq!(nearest(&xs, 95.0), Some(120.0));
        assert_eq!(nearest(&xs, -5.0), Some(0.0));
        assert_eq!(nearest(&[], 1.0), None);
        let series = [
            Series { name: "Invocations".into(), class: "series-a", points: vec![(0.0, 3.0), (60.0, 150.0)] },
            Series { name: "ModelLatency".into(), class: "series-b", points: vec![(0.0, 0.5)] },
        ];
        let (at, values) = readout(&series, 60.0, XAxis::Time, "", false);
        assert_eq!(at, "1970-01-01 00:01 UTC");
        assert_eq!(values, vec![("Invocations".into(), "series-a", "150".into()), ("ModelLatency".into(), "series-b", "—".into())]);
        let (at, _) = readout(&series, 3.0, XAxis::Plain, "epoch", true);
        assert_eq!(at, "epoch 3");
    }

    #[test]
    fn polyline_maps_corners_to_the_box_with_y_down() {
        let b = Bounds { x0: 0.0, x1: 10.0, y0: 0.0, y1: 1.0 };
        assert_eq!(polyline(&[(0.0, 0.0), (10.0, 1.0), (5.0, 0.5)], b, 100.0, 50.0), "0.0,50.0 100.0,0.0 50.0,25.0");
    }
}
