//! [`Summary`]: min / median / p99 / max of a measure over a drill's rounds.

/// Min, median, p99 and max of a set of values (nearest rank, as `sutra bench`), over
/// the rounds that have the measure.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// How many rounds had a value.
    pub count: usize,
    /// Smallest.
    pub min: f64,
    /// 50th percentile (nearest rank).
    pub median: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Summary {
    /// The summary of `values`; `None` if there are none. NaNs are ignored.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(Self {
            count: v.len(),
            min: v[0],
            median: nearest_rank(&v, 50.0),
            p99: nearest_rank(&v, 99.0),
            max: v[v.len() - 1],
        })
    }
}

/// The `p`th percentile of sorted, non-empty `v` by the nearest-rank method: the
/// smallest value with at least `p`% of the values at or below it.
pub fn nearest_rank(v: &[f64], p: f64) -> f64 {
    assert!(!v.is_empty(), "percentile of no values");
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(Summary::of([]), None);
        let one = Summary::of([7.0]).unwrap();
        assert_eq!(
            (one.min, one.median, one.p99, one.max),
            (7.0, 7.0, 7.0, 7.0)
        );
        let s = Summary::of([300.0, 100.0, 200.0, f64::NAN]).unwrap();
        assert_eq!(s.count, 3);
        assert_eq!(
            (s.min, s.median, s.p99, s.max),
            (100.0, 200.0, 300.0, 300.0)
        );
        let even = Summary::of([4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(even.median, 2.0);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(hundred).unwrap();
        assert_eq!((s.median, s.p99, s.max), (50.0, 99.0, 100.0));
        let two_hundred: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(Summary::of(two_hundred).unwrap().p99, 198.0);
    }
}
