//! The worker's integration tests, one binary: the pipeline end to end, fault injection,
//! the soak run and the KS command line, all on real servers started by drift-testkit.
mod agreement;
mod cluster;
mod faults;
mod ks_cli;
mod mixed;
mod pipeline;
mod soak;
