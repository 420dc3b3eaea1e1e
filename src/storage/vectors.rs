//! An item's embedding vectors as storage keeps them: one blob per item (no vector extension
//! is needed on either backend), read back whole for a query to be scored in Rust.

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

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Every vector.
    pub fn chunks(&self) -> impl Iterator<Item = &[f32]> {
        self.data.chunks_exact(self.dims)
    }

    pub fn to_blob(&self) -> Vec<u8> {
        let mut blob = Vec::with_capacity(4 + self.data.len() * 4);
        blob.extend_from_slice(&u32::try_from(self.dims).unwrap_or(u32::MAX).to_le_bytes());
        for component in &self.data {
            blob.extend_from_slice(&component.to_le_bytes());
        }
        blob
    }

    /// A blob written by [`Vectors::to_blob`]; anything else is `None` (the item is then
    /// simply not ranked).
    pub fn from_blob(blob: &[u8]) -> Option<Self> {
        let (length, rest) = blob.split_first_chunk::<4>()?;
        let dims = usize::try_from(u32::from_le_bytes(*length)).ok().filter(|dims| *dims > 0)?;
        if rest.len() % (dims * 4) != 0 {
            return None;
        }
        let data = rest.chunks_exact(4).map(|bytes| f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])).collect();
        Some(Self { dims, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_and_bad_ones_are_none() {
        let vectors = Vectors::new(3, &[vec![1.0, -2.5, 0.0], vec![0.5, 0.25, 9.0]]).expect("vectors");
        assert_eq!(Vectors::from_blob(&vectors.to_blob()), Some(vectors.clone()));
        assert_eq!(vectors.chunks().count(), 2);
        assert!(Vectors::new(2, &[vec![1.0]]).is_err() && Vectors::new(0, &[]).is_err());
        assert_eq!(Vectors::from_blob(&[1, 0]), None);
        assert_eq!(Vectors::from_blob(&[2, 0, 0, 0, 0, 0, 128, 63]), None, "half a vector");
    }
}
