//! [`Value`]: the bytes a write stores under a key, as the checker compares them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The content a write stores, compared byte for byte.
///
/// In JSON a value is a string: its text when it is UTF-8 and does not start with
/// `hex:`, otherwise `hex:` followed by the bytes in lower-case hex. Both forms read back
/// to the same bytes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Value(pub Vec<u8>);

const HEX_PREFIX: &str = "hex:";

impl Value {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.0)
            .ok()
            .filter(|s| !s.starts_with(HEX_PREFIX))
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.text() {
            Some(s) => write!(f, "{s:?}"),
            None => {
                f.write_str(HEX_PREFIX)?;
                self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Self(v.to_vec())
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self(v.as_bytes().to_vec())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Self(v.into_bytes())
    }
}

/// The decimal text of the number, so `Value::from(7)` equals `Value::from("7")`.
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Self(v.to_string().into_bytes())
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.text() {
            Some(t) => s.serialize_str(t),
            None => s.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let Some(hex) = s.strip_prefix(HEX_PREFIX) else {
            return Ok(Self(s.into_bytes()));
        };
        if hex.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd number of hex digits"));
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text values stay readable in JSON; other bytes, and text that would be mistaken for
    /// hex, round-trip through the `hex:` form.
    #[test]
    fn json_round_trip() {
        for v in [
            Value::from("c1-7"),
            Value::from(vec![0xff, 0x00, 0x10]),
            Value::from("hex:abc"),
            Value::from(""),
        ] {
            let json = serde_json::to_string(&v).expect("serializes");
            let back: Value = serde_json::from_str(&json).expect("deserializes");
            assert_eq!(back, v, "{json}");
        }
        assert_eq!(
            serde_json::to_string(&Value::from("x")).expect("ok"),
            "\"x\""
        );
        assert_eq!(
            serde_json::to_string(&Value::from(vec![0xff])).expect("ok"),
            "\"hex:ff\""
        );
    }
}
