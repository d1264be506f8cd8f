//! Everything the drift monitor does with Redis, and nothing else: connection options,
//! the key schema, the Lua scripts (one per atomic operation, in `scripts/`) and one typed
//! call per operation. Both sides of every protocol live here (ingest and job enqueueing;
//! job reading, claiming, acknowledging and dead-lettering; results, history, status), so
//! no Redis command or key format exists outside this crate.
//!
//! Where a row goes: [`Store::ingest`] (`ingest.lua`) appends it to every feature's window
//! and enqueues jobs; a worker's [`JobReader`] reads them; [`Store::read_windows`]
//! (`read_windows.lua`) hands it a batch's windows; [`Store::record_batch`]
//! (`record_batch.lua`) stores the batch's decisions and acknowledges its jobs;
//! [`Store::status`] is what the API and the exporter read back.
pub mod codec;
mod connect;
mod error;
mod evaluation;
mod ingest;
pub mod inspect;
mod jobs;
pub mod keys;
mod monitors;
mod pool;
mod reply;
mod status;
mod store;

pub use connect::{RedisArgs, RedisOptions, DEFAULT_REDIS_URL};
pub use error::StoreError;
pub use evaluation::{Evaluated, Flags, JobRead, Recorded, SkipKind, Snapshot, Tally, WindowsRead};
pub use ingest::Ingested;
pub use jobs::{Job, JobReader, Poison, StuckJob};
pub use keys::Keys;
pub use monitors::Registered;
pub use pool::IDLE_PING;
pub use status::JobsInfo;
pub use store::{Caps, Store};
