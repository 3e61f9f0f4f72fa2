//! Exact k-nearest-neighbour search: a scan over every stored embedding.
//!
//! Embeddings are read in place from the mapped data file (records are 8-byte aligned,
//! so on little-endian machines the bytes are used as `f32` directly). Norms are kept
//! in the index, so cosine costs one dot product per vector.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::types::Metric;

/// Dot product with eight independent accumulators, which the compiler turns into
/// SIMD adds and multiplies.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut acc = [0.0f32; 8];
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Squared Euclidean distance, same shape as [`dot`].
pub(crate) fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    let mut acc = [0.0f32; 8];
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Runs `f` over little-endian f32 bytes as a slice of `f32`, without copying where
/// the platform allows it.
pub(crate) fn with_f32s<R>(bytes: &[u8], f: impl FnOnce(&[f32]) -> R) -> R {
    #[cfg(target_endian = "little")]
    if let Ok(values) = bytemuck::try_cast_slice::<u8, f32>(bytes) {
        return f(values);
    }
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("chunk of 4")))
        .collect();
    f(&values)
}

/// Score of one stored vector; higher is better for every metric here (L2 is negated
/// while ranking and turned back into a distance at the end).
pub(crate) fn rank_key(
    metric: Metric,
    query: &[f32],
    query_norm: f32,
    v: &[f32],
    v_norm: f32,
) -> f32 {
    match metric {
        Metric::Dot => dot(query, v),
        Metric::Cosine => {
            if v_norm == 0.0 {
                0.0
            } else {
                dot(query, v) / (query_norm * v_norm)
            }
        }
        Metric::L2 => -l2_squared(query, v).sqrt(),
    }
}

/// A candidate in the top-k heap; the heap's top is the worst kept candidate.
#[derive(Debug)]
struct Candidate<'a> {
    key: f32,
    id: &'a str,
}

impl Ord for Candidate<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Better = higher key, then smaller id. The max-heap keeps the worst on top, so
        // "greater" means worse.
        other
            .key
            .total_cmp(&self.key)
            .then_with(|| self.id.cmp(other.id))
    }
}
impl PartialOrd for Candidate<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Candidate<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate<'_> {}

/// Keeps the best `k` of a stream of scored ids.
#[derive(Debug)]
pub(crate) struct TopK<'a> {
    k: usize,
    heap: BinaryHeap<Candidate<'a>>,
}

impl<'a> TopK<'a> {
    pub(crate) fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    pub(crate) fn offer(&mut self, id: &'a str, key: f32) {
        let c = Candidate { key, id };
        if self.heap.len() < self.k {
            self.heap.push(c);
        } else if let Some(worst) = self.heap.peek()
            && c < *worst
        {
            self.heap.pop();
            self.heap.push(c);
        }
    }

    /// Best first.
    pub(crate) fn into_sorted(self) -> Vec<(&'a str, f32)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|c| (c.id, c.key))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_naive() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..19).map(|i| (i as f32).sin()).collect();
        let naive_dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let naive_l2: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        assert!((dot(&a, &b) - naive_dot).abs() < 1e-4);
        assert!((l2_squared(&a, &b) - naive_l2).abs() < 1e-3);
    }

    #[test]
    fn top_k_keeps_best_with_id_tie_break() {
        let mut t = TopK::new(3);
        for (id, s) in [
            ("e", 1.0),
            ("a", 5.0),
            ("d", 3.0),
            ("c", 3.0),
            ("b", 4.0),
            ("f", 0.5),
        ] {
            t.offer(id, s);
        }
        assert_eq!(t.into_sorted(), vec![("a", 5.0), ("b", 4.0), ("c", 3.0)]);
    }
}
