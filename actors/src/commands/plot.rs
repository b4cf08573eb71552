//! The `bench --sweep` plot: latency against committed throughput as a small SVG, written by
//! hand (a few lines of markup need no plotting library).

/// One point of a sweep: committed transfers per second, and the p50 and p99 latency in ms.
#[derive(Clone, Copy, Debug)]
pub struct Point {
    /// Committed transfers per second.
    pub throughput: f64,
    /// Median latency, ms.
    pub p50: f64,
    /// 99th-percentile latency, ms.
    pub p99: f64,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 50.0;
const TOP: f64 = 30.0;
const RIGHT: f64 = 20.0;

/// A round number at or above `x` (1, 2 or 5 times a power of ten), for an axis's end.
fn nice_ceiling(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|v| *v >= x)
        .unwrap_or(10.0 * power)
}

/// The plot of `points` (p50 and p99 against throughput), titled `title`.
pub fn latency_svg(title: &str, points: &[Point]) -> String {
    let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
    let x_max = nice_ceiling(
        points
            .iter()
            .map(|p| finite(p.throughput))
            .fold(0.0, f64::max),
    );
    let y_max = nice_ceiling(points.iter().map(|p| finite(p.p99)).fold(0.0, f64::max));
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |v: f64| LEFT + finite(v) / x_max * plot_w;
    let y = |v: f64| TOP + plot_h - finite(v) / y_max * plot_h;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
        WIDTH / 2.0,
        escape(title)
    );
    for k in 0..=5 {
        let fx = x_max * f64::from(k) / 5.0;
        let fy = y_max * f64::from(k) / 5.0;
        svg.push_str(&format!(
            "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"#ddd\"/>\n\
             <text x=\"{0:.1}\" y=\"{3:.1}\" text-anchor=\"middle\">{4:.0}</text>\n\
             <line x1=\"{5:.1}\" y1=\"{6:.1}\" x2=\"{7:.1}\" y2=\"{6:.1}\" stroke=\"#ddd\"/>\n\
             <text x=\"{8:.1}\" y=\"{9:.1}\" text-anchor=\"end\">{10:.0}</text>\n",
            x(fx),
            TOP,
            TOP + plot_h,
            TOP + plot_h + 18.0,
            fx,
            LEFT,
            y(fy),
            LEFT + plot_w,
            LEFT - 6.0,
            y(fy) + 4.0,
            fy
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">committed transfers per second</text>\n\
         <text x=\"16\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {})\">latency (ms)</text>\n",
        LEFT + plot_w / 2.0,
        HEIGHT - 10.0,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    ));
    for (name, colour, pick) in [
        ("p50", "#1f77b4", (|p: &Point| p.p50) as fn(&Point) -> f64),
        ("p99", "#d62728", |p: &Point| p.p99),
    ] {
        let path: Vec<String> = points
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.throughput), y(pick(p))))
            .collect();
        svg.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n",
            path.join(" ")
        ));
        for p in points {
            svg.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/>\n",
                x(p.throughput),
                y(pick(p))
            ));
        }
        let legend_y = if name == "p50" {
            TOP + 14.0
        } else {
            TOP + 30.0
        };
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{legend_y:.1}\" fill=\"{colour}\">{name}</text>\n",
            LEFT + 10.0
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

/// Text safe inside SVG markup.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice_ceiling(3_990.0), 5_000.0);
        assert_eq!(nice_ceiling(1_000.0), 1_000.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
    }

    #[test]
    fn the_plot_has_both_lines_and_a_point_each() {
        let points = [
            Point {
                throughput: 1_000.0,
                p50: 100.0,
                p99: 300.0,
            },
            Point {
                throughput: 2_000.0,
                p50: 150.0,
                p99: f64::NAN,
            },
        ];
        let svg = latency_svg("a <sweep>", &points);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains("a &lt;sweep&gt;"));
        assert!(!svg.contains("NaN"));
    }
}
