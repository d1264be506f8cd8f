//! Evaluation jobs as they come off the jobs streams.

use deadpool_redis::redis::Value;
use std::collections::HashMap;

/// One job: evaluate feature `feature` of `monitor` on the window that ended at row `seq`,
/// against reference version `version`.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub monitor: String,
    pub id: String,
    pub feature: usize,
    pub seq: u64,
    pub version: String,
}

/// An entry that is not a valid job (trimmed away, or written by something else).
#[derive(Clone, Debug, PartialEq)]
pub struct Poison {
    pub monitor: String,
    pub id: String,
    pub reason: String,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn pairs(v: &Value) -> Vec<(Value, Value)> {
    match v {
        Value::Array(items) => items
            .chunks_exact(2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect(),
        Value::Map(m) => m.clone(),
        _ => Vec::new(),
    }
}

/// Parses one stream entry `[id, [field, value, ...]]`.
pub fn parse_entry(monitor: &str, entry: &Value) -> Option<Result<Job, Poison>> {
    let Value::Array(parts) = entry else {
        return None;
    };
    let id = text(parts.first()?)?;
    let poison = |reason: &str| Poison {
        monitor: monitor.to_string(),
        id: id.clone(),
        reason: reason.to_string(),
    };
    let fields: HashMap<String, String> = match parts.get(1) {
        Some(Value::Nil) | None => return Some(Err(poison("entry was trimmed from the stream"))),
        Some(v) => pairs(v)
            .iter()
            .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
            .collect(),
    };
    let job = (|| {
        Some(Job {
            monitor: monitor.to_string(),
            id: id.clone(),
            feature: fields.get("f")?.parse().ok()?,
            seq: fields.get("s")?.parse().ok()?,
            version: fields.get("v")?.clone(),
        })
    })();
    Some(job.ok_or_else(|| poison("not a job: fields f, s and v are required")))
}

/// Parses an XREADGROUP reply: `[[stream, [entry, ...]], ...]` (or a map in RESP3).
pub fn parse_read_reply(
    reply: &Value,
    monitor_of_stream: &HashMap<String, String>,
) -> Vec<Result<Job, Poison>> {
    let streams: Vec<(Value, Value)> = match reply {
        Value::Array(items) => items
            .iter()
            .filter_map(|s| match s {
                Value::Array(kv) if kv.len() == 2 => Some((kv[0].clone(), kv[1].clone())),
                _ => None,
            })
            .collect(),
        Value::Map(m) => m.clone(),
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for (key, entries) in streams {
        let Some(monitor) = text(&key).and_then(|k| monitor_of_stream.get(&k).cloned()) else {
            continue;
        };
        if let Value::Array(entries) = entries {
            out.extend(entries.iter().filter_map(|e| parse_entry(&monitor, e)));
        }
    }
    out
}

/// Parses an XAUTOCLAIM reply: `[next-id, [entry, ...], [deleted-id, ...]]`.
pub fn parse_autoclaim(monitor: &str, reply: &Value) -> (String, Vec<Result<Job, Poison>>) {
    let Value::Array(parts) = reply else {
        return ("0-0".into(), Vec::new());
    };
    let next = parts.first().and_then(text).unwrap_or_else(|| "0-0".into());
    let jobs = match parts.get(1) {
        Some(Value::Array(entries)) => entries
            .iter()
            .filter_map(|e| parse_entry(monitor, e))
            .collect(),
        _ => Vec::new(),
    };
    (next, jobs)
}

/// Parses an extended XPENDING reply into (id, deliveries).
pub fn parse_pending(reply: &Value) -> Vec<(String, u64)> {
    let Value::Array(items) = reply else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|it| {
            let Value::Array(p) = it else { return None };
            let id = text(p.first()?)?;
            let n = match p.get(3)? {
                Value::Int(i) => u64::try_from(*i).ok()?,
                v => text(v)?.parse().ok()?,
            };
            Some((id, n))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn parses_entries_and_poison() {
        let e = Value::Array(vec![
            b("1-0"),
            Value::Array(vec![b("f"), b("3"), b("s"), b("600"), b("v"), b("abc")]),
        ]);
        assert_eq!(
            parse_entry("m", &e),
            Some(Ok(Job {
                monitor: "m".into(),
                id: "1-0".into(),
                feature: 3,
                seq: 600,
                version: "abc".into()
            }))
        );
        let trimmed = Value::Array(vec![b("2-0"), Value::Nil]);
        assert!(matches!(parse_entry("m", &trimmed), Some(Err(_))));
        let junk = Value::Array(vec![b("3-0"), Value::Array(vec![b("x"), b("y")])]);
        assert!(matches!(parse_entry("m", &junk), Some(Err(_))));
    }

    #[test]
    fn parses_pending() {
        let r = Value::Array(vec![Value::Array(vec![
            b("1-0"),
            b("c1"),
            Value::Int(100),
            Value::Int(4),
        ])]);
        assert_eq!(parse_pending(&r), vec![("1-0".to_string(), 4)]);
    }
}
