//! An item's embedding vectors as storage keeps them: one blob per item (no vector extension
//! is needed on either backend), and the ranking of a query over them: every candidate row is
//! scored straight from its blob as it streams by, and only the best `offset + limit` are
//! kept ([`Ranking`]), so a query over 10^5 items allocates for a page, not for 10^5 items.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::StoreItem;

/// The vectors of an item's embedded texts, all of one length. Stored as one blob: the length
/// (`u32`, little-endian), then every component (`f32`, little-endian), vector after vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    dims: usize,
    data: Vec<f32>,
}

impl Vectors {
    /// The vectors of one item; each must have `dims` components (and `dims` must be positive).
    pub fn new(dims: usize, vectors: &[Vec<f32>]) -> Result<Self, String> {
        if dims == 0 || u32::try_from(dims).is_err() {
            return Err(format!("{dims} is not a vector length"));
        }
        if let Some(wrong) = vectors.iter().find(|vector| vector.len() != dims) {
            return Err(format!("the embeddings returned a vector of {} numbers; `store.index.dims` is {dims}", wrong.len()));
        }
        Ok(Self { dims, data: vectors.concat() })
    }

    pub fn to_blob(&self) -> Vec<u8> {
        let mut blob = Vec::with_capacity(4 + self.data.len() * 4);
        blob.extend_from_slice(&u32::try_from(self.dims).unwrap_or(u32::MAX).to_le_bytes());
        for component in &self.data {
            blob.extend_from_slice(&component.to_le_bytes());
        }
        blob
    }
}

/// The cosine similarity of `query` (of Euclidean norm `norm`) to the best of the vectors in
/// `blob` (a [`Vectors::to_blob`]); none when the blob holds no vector of the query's length.
/// A zero vector scores 0.
fn score_blob(query: &[f32], norm: f32, blob: &[u8]) -> Option<f64> {
    let (length, rest) = blob.split_first_chunk::<4>()?;
    let dims = usize::try_from(u32::from_le_bytes(*length)).ok()?;
    if dims != query.len() || dims == 0 || rest.is_empty() || rest.len() % (dims * 4) != 0 {
        return None;
    }
    rest.chunks_exact(dims * 4)
        .map(|vector| {
            let (dot, squares) = vector.chunks_exact(4).zip(query).fold((0.0f32, 0.0f32), |(dot, squares), (bytes, q)| {
                let v = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                (dot + v * q, squares + v * v)
            });
            let denominator = squares.sqrt() * norm;
            if denominator == 0.0 { 0.0 } else { f64::from(dot / denominator) }
        })
        .reduce(f64::max)
}

/// A query's ranking, fed one candidate row at a time: best score first (the unscored last),
/// equal ones newest first, then by namespace and key. Keeps the best `offset + limit`.
pub struct Ranking {
    query: Vec<f32>,
    norm: f32,
    wanted: usize,
    /// The kept candidates, the worst on top.
    kept: BinaryHeap<Ranked>,
}

/// One kept candidate row (its namespace as stored, `a.b`; its value as JSON text).
struct Ranked {
    score: Option<f64>,
    namespace: String,
    key: String,
    value: String,
    created_at: i64,
    updated_at: i64,
    expires_at: Option<i64>,
}

/// A candidate row as a backend reads it.
pub struct Candidate<'a> {
    pub namespace: &'a str,
    pub key: &'a str,
    pub value: &'a str,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: Option<i64>,
    pub vectors: Option<&'a [u8]>,
}

/// `Less` when `a` ranks before `b`.
fn rank(a: (Option<f64>, i64, &str, &str), b: (Option<f64>, i64, &str, &str)) -> Ordering {
    let score = |score: Option<f64>| score.unwrap_or(f64::NEG_INFINITY);
    score(b.0).total_cmp(&score(a.0)).then(b.1.cmp(&a.1)).then_with(|| a.2.cmp(b.2)).then_with(|| a.3.cmp(b.3))
}

impl Ranked {
    fn order(&self) -> (Option<f64>, i64, &str, &str) {
        (self.score, self.updated_at, &self.namespace, &self.key)
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    /// Greater is worse, so the heap's top is the candidate to drop first.
    fn cmp(&self, other: &Self) -> Ordering {
        rank(self.order(), other.order())
    }
}

impl Ranking {
    pub fn new(query: Vec<f32>, limit: usize, offset: usize) -> Self {
        let norm = query.iter().map(|q| q * q).sum::<f32>().sqrt();
        let wanted = offset.saturating_add(limit);
        Self { query, norm, wanted, kept: BinaryHeap::with_capacity(wanted.min(4096) + 1) }
    }

    /// Offers a candidate that passed the filters; its strings are copied only if it is kept.
    pub fn offer(&mut self, candidate: &Candidate<'_>) {
        if self.wanted == 0 {
            return;
        }
        let score = candidate.vectors.and_then(|blob| score_blob(&self.query, self.norm, blob));
        if self.kept.len() == self.wanted
            && let Some(worst) = self.kept.peek()
            && rank((score, candidate.updated_at, candidate.namespace, candidate.key), worst.order()) != Ordering::Less
        {
            return;
        }
        self.kept.push(Ranked {
            score,
            namespace: candidate.namespace.to_string(),
            key: candidate.key.to_string(),
            value: candidate.value.to_string(),
            created_at: candidate.created_at,
            updated_at: candidate.updated_at,
            expires_at: candidate.expires_at,
        });
        if self.kept.len() > self.wanted {
            self.kept.pop();
        }
    }

    /// The page: the kept candidates best first, less the first `offset`, as items.
    pub fn page(self, offset: usize) -> Vec<(StoreItem, Option<f64>)> {
        self.kept
            .into_sorted_vec()
            .into_iter()
            .skip(offset)
            .map(|ranked| {
                let value = match serde_json::from_str(&ranked.value) {
                    Ok(serde_json::Value::Object(value)) => value,
                    _ => serde_json::Map::new(),
                };
                let namespace = ranked.namespace.split('.').map(str::to_string).collect();
                let item = StoreItem { namespace, key: ranked.key, value, created_at: ranked.created_at, updated_at: ranked.updated_at, expires_at: ranked.expires_at };
                (item, ranked.score)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_hold_the_length_then_the_components() {
        let blob = Vectors::new(2, &[vec![1.0, -2.5], vec![0.5, 0.25]]).expect("vectors").to_blob();
        assert_eq!(blob.len(), 4 + 4 * 4);
        assert_eq!((&blob[..4], &blob[4..8], &blob[16..]), (&2u32.to_le_bytes()[..], &1.0f32.to_le_bytes()[..], &0.25f32.to_le_bytes()[..]));
        assert!(Vectors::new(2, &[vec![1.0]]).is_err() && Vectors::new(0, &[]).is_err());
        assert_eq!(score_blob(&[1.0], 1.0, &[1, 0]), None, "a short header");
        assert_eq!(score_blob(&[1.0, 0.0], 1.0, &[2, 0, 0, 0, 0, 0, 128, 63]), None, "half a vector");
    }

    #[test]
    fn blobs_score_their_best_vector() {
        let blob = Vectors::new(2, &[vec![1.0, 0.0], vec![0.0, 1.0]]).expect("vectors").to_blob();
        let score = |query: &[f32]| score_blob(query, query.iter().map(|q| q * q).sum::<f32>().sqrt(), &blob);
        assert!((score(&[0.0, 2.0]).expect("a score") - 1.0).abs() < 1e-6);
        assert!((score(&[1.0, 1.0]).expect("a score") - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(score(&[1.0, 0.0, 0.0]), None, "another length is not ranked");
        let zero = Vectors::new(2, &[vec![0.0, 0.0]]).expect("vectors").to_blob();
        assert_eq!(score_blob(&[1.0, 0.0], 1.0, &zero), Some(0.0));
        assert_eq!(score_blob(&[1.0, 0.0], 1.0, &[2, 0, 0, 0]), None, "no vector");
    }

    #[test]
    fn rankings_keep_the_best_page() {
        let blob = |vector: [f32; 2]| Vectors::new(2, &[vector.to_vec()]).expect("vectors").to_blob();
        // (key, vector, updated_at), in no particular order.
        let rows = [
            ("old-unscored", None, 1),
            ("tie-old", Some(blob([2.0, 2.0])), 2),
            ("best", Some(blob([1.0, 0.0])), 3),
            ("new-unscored", None, 6),
            ("tie-new", Some(blob([1.0, 1.0])), 4),
            ("far", Some(blob([0.0, 1.0])), 5),
        ];
        let ranked = |limit: usize, offset: usize| {
            let mut ranking = Ranking::new(vec![1.0, 0.0], limit, offset);
            for (key, vector, updated_at) in &rows {
                ranking.offer(&Candidate { namespace: "docs.a", key, value: "{\"n\": 1}", created_at: 0, updated_at: *updated_at, expires_at: None, vectors: vector.as_deref() });
            }
            let page = ranking.page(offset);
            assert!(page.iter().all(|(item, _)| item.namespace == ["docs", "a"] && item.value["n"] == 1));
            page.into_iter().map(|(item, score)| (item.key, score.map(|score| (score * 100.0).round() / 100.0))).collect::<Vec<_>>()
        };
        let expected = [("best", Some(1.0)), ("tie-new", Some(0.71)), ("tie-old", Some(0.71)), ("far", Some(0.0)), ("new-unscored", None), ("old-unscored", None)];
        assert_eq!(ranked(10, 0), expected.iter().map(|(key, score)| ((*key).to_string(), *score)).collect::<Vec<_>>());
        assert_eq!(ranked(2, 2).into_iter().map(|(key, _)| key).collect::<Vec<_>>(), ["tie-old", "far"]);
        assert_eq!(ranked(1, 4).into_iter().map(|(key, _)| key).collect::<Vec<_>>(), ["new-unscored"]);
        assert!(ranked(0, 0).is_empty() && ranked(3, 10).is_empty());
    }
}
