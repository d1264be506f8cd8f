//! Keeps the README's table of error codes equal to [`ErrorCode::ALL`], so that the codes
//! operators read about are the codes the API sends.

use crate::ErrorCode;

const HEADER: &str = "| status | code | meaning |";

fn expected() -> Vec<String> {
    let mut lines = vec![HEADER.to_string(), "|---|---|---|".to_string()];
    lines.extend(
        ErrorCode::ALL
            .iter()
            .map(|c| format!("| {} | `{}` | {} |", c.status(), c.as_str(), c.meaning())),
    );
    lines
}

#[test]
fn readme_lists_every_error_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let found: Vec<&str> = readme
        .lines()
        .skip_while(|l| l.trim() != HEADER)
        .take_while(|l| l.starts_with('|'))
        .map(str::trim_end)
        .collect();
    let want = expected();
    assert!(
        found == want,
        "the error table of README.md (section \"HTTP API\") differs from ErrorCode::ALL; \
         replace it with:\n\n{}\n",
        want.join("\n")
    );
}
