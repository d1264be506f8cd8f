//! Compact value encoding for Redis: 8 little-endian bytes per f64.
//!
//! Binary values are exact (no decimal round trip) and a third the size of a decimal
//! string for typical features, which keeps one ingest a single small round trip.

pub fn encode(v: f64) -> [u8; 8] {
    v.to_le_bytes()
}

/// Decodes one value; `None` when the bytes are not 8 long (a foreign or corrupt entry).
pub fn decode(bytes: &[u8]) -> Option<f64> {
    Some(f64::from_le_bytes(bytes.try_into().ok()?))
}

/// Decodes a concatenation of values, as stored for a reference.
pub fn decode_all(bytes: &[u8]) -> Option<Vec<f64>> {
    if bytes.len() % 8 != 0 {
        return None;
    }
    bytes.chunks_exact(8).map(decode).collect()
}

pub fn encode_all(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_exactly() {
        let v = [0.1, -0.0, f64::MIN_POSITIVE, 1e308, 17.99];
        assert_eq!(decode_all(&encode_all(&v)).unwrap(), v);
        assert_eq!(decode(&encode(0.1)), Some(0.1));
        assert_eq!(decode(b"abc"), None);
        assert_eq!(decode_all(b"123456789"), None);
    }
}
