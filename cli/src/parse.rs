//! Parsers for flag values: vectors, attributes, durations, and the printed command line.

use std::time::Duration;

/// A vector flag's value (one flag, many numbers).
#[derive(Debug, Clone, PartialEq)]
pub struct Vector(pub Vec<f32>);

/// A vector given as `0.1,0.2,0.3` or as a JSON array `[0.1, 0.2, 0.3]`.
pub fn vector(s: &str) -> Result<Vector, String> {
    numbers(s).map(Vector)
}

fn numbers(s: &str) -> Result<Vec<f32>, String> {
    let s = s.trim();
    if s.starts_with('[') {
        return serde_json::from_str::<Vec<f32>>(s)
            .map_err(|e| format!("not a JSON array of numbers: {e}"));
    }
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(',')
        .enumerate()
        .map(|(i, v)| {
            v.trim()
                .parse::<f32>()
                .map_err(|_| format!("element {i} ({:?}) is not a number", v.trim()))
        })
        .collect()
}

/// An attribute given as `key=value`.
pub fn attribute(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not key=value")),
    }
}

/// Seconds, possibly fractional (`2`, `0.5`).
pub fn seconds(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .and_then(|v| Duration::try_from_secs_f64(v).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{s:?} is not a positive number of seconds"))
}

/// The command line as a shell would take it back: arguments with spaces or shell
/// characters are single-quoted.
pub fn command_line(args: impl IntoIterator<Item = String>) -> String {
    args.into_iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
            if plain {
                a
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_as_lists_or_json() {
        assert_eq!(vector("1,2.5, -3").unwrap().0, vec![1.0, 2.5, -3.0]);
        assert_eq!(vector("[1, 2.5, -3]").unwrap().0, vec![1.0, 2.5, -3.0]);
        assert_eq!(vector("").unwrap().0, Vec::<f32>::new());
        assert!(vector("1,x").unwrap_err().contains("element 1"));
        assert!(vector("[1,").is_err());
    }

    #[test]
    fn attributes_and_seconds() {
        assert_eq!(attribute("k=v=w").unwrap(), ("k".into(), "v=w".into()));
        assert_eq!(attribute("k=").unwrap(), ("k".into(), String::new()));
        assert!(attribute("=v").is_err());
        assert!(attribute("kv").is_err());
        assert_eq!(seconds("0.5").unwrap(), Duration::from_millis(500));
        assert!(seconds("0").is_err());
        assert!(seconds("-1").is_err());
        assert!(seconds("x").is_err());
    }

    #[test]
    fn command_lines_quote_what_needs_it() {
        let line = command_line(["sutra", "put", "a b", "it's", "--k=1"].map(String::from));
        assert_eq!(line, r"sutra put 'a b' 'it'\''s' --k=1");
    }
}
