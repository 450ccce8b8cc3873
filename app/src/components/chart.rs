//! A small SVG line chart: the curves of a training job. Drawn on the
//! server too, so the charts are there before the wasm arrives.

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
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

const W: f64 = 320.0;
const H: f64 = 150.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 20.0;

#[component]
pub fn LineChart(
    #[prop(into)] title: String,
    series: Vec<Series>,
    #[prop(into)] x_label: String,
    #[prop(optional)] percent: bool,
) -> impl IntoView {
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
    let lines = series
        .iter()
        .map(|s| {
            let pts = polyline(&s.points, b, plot_w, plot_h);
            let dots = if s.points.len() <= 30 {
                s.points
                    .iter()
                    .map(|(x, y)| {
                        let cx = (x - b.x0) / (b.x1 - b.x0) * plot_w;
                        let cy = plot_h - (y - b.y0) / (b.y1 - b.y0) * plot_h;
                        view! { <circle class=s.class cx=format!("{cx:.1}") cy=format!("{cy:.1}") r="2.5"><title>{format!("{}: {}", s.name, tick(*y, percent))}</title></circle> }
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
    let (data_title, caption) = (title.clone(), title.clone());
    view! {
        <figure class="chart" data-chart=data_title data-points=points>
            <figcaption>{caption}<span class="legends">{legend}</span></figcaption>
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=title>
                <g class="axis">
                    <text x=LEFT - 4.0 y="12" text-anchor="end">{tick(b.y1, percent)}</text>
                    <text x=LEFT - 4.0 y=8.0 + plot_h / 2.0 + 4.0 text-anchor="end">{tick(mid, percent)}</text>
                    <text x=LEFT - 4.0 y=8.0 + plot_h text-anchor="end">{tick(b.y0, percent)}</text>
                    <text x=LEFT y=H - 4.0>{format!("{}", b.x0)}</text>
                    <text x=W - 8.0 y=H - 4.0 text-anchor="end">{format!("{} {}", b.x1, x_label)}</text>
                    <line x1=LEFT y1="8" x2=LEFT y2=8.0 + plot_h/>
                    <line x1=LEFT y1=8.0 + plot_h x2=W - 8.0 y2=8.0 + plot_h/>
                    <line class="grid" x1=LEFT y1=8.0 + plot_h / 2.0 x2=W - 8.0 y2=8.0 + plot_h / 2.0/>
                </g>
                <g transform=format!("translate({LEFT},8)")>{lines}</g>
            </svg>
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
    fn polyline_maps_corners_to_the_box_with_y_down() {
        let b = Bounds { x0: 0.0, x1: 10.0, y0: 0.0, y1: 1.0 };
        assert_eq!(polyline(&[(0.0, 0.0), (10.0, 1.0), (5.0, 0.5)], b, 100.0, 50.0), "0.0,50.0 100.0,0.0 50.0,25.0");
    }
}
