//! Figures as the benchmark reports them: min/median/max of a few runs, printed as one
//! line and kept for `target/bench.json`.

use serde_json::{Map, Value, json};

/// Named figures in the order they were measured.
#[derive(Default)]
pub struct Report {
    figures: Map<String, Value>,
}

impl Report {
    /// Records `values` (at least one) under `name`, in `unit`, and prints them.
    pub fn add(&mut self, name: &str, unit: &str, values: &[f64]) {
        let (min, median, max) = spread(values);
        println!(
            "  {name:<46} median {median:>9.2} {unit:<6} min {min:>9.2}  max {max:>9.2}  (n={})",
            values.len()
        );
        self.figures.insert(
            name.to_string(),
            json!({ "unit": unit, "min": min, "median": median, "max": max, "runs": values }),
        );
    }

    /// A figure that is one number (a size, a count).
    pub fn add_one(&mut self, name: &str, unit: &str, value: f64) {
        self.add(name, unit, &[value]);
    }

    pub fn to_json(&self, context: Value) -> Value {
        json!({ "context": context, "figures": self.figures })
    }
}

/// (min, median, max); the median of an even count is the upper middle value.
pub fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    (sorted[0], sorted[n / 2], sorted[n - 1])
}

/// The `q` quantile (0..=1) of `sorted` values, nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
