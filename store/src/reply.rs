//! Reading fields out of untyped Redis replies (script results, stream entries), shared by
//! the typed callers that parse them.

use deadpool_redis::redis::Value;

/// A string, integer or status reply as text.
pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A non-negative integer reply, or one sent as text.
pub(crate) fn int(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        v => text(v)?.parse().ok(),
    }
}
