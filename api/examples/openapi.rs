//! Prints the OpenAPI document, to refresh the committed copy:
//! `cargo run -q -p drift-api --example openapi > api/openapi.json`.

fn main() -> Result<(), serde_json::Error> {
    print!("{}", drift_api::openapi::document_json()?);
    Ok(())
}
