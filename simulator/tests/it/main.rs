//! The simulator's tests, one binary: the row model and scenarios without a server, and
//! live runs against a local stack started by drift-testkit.
mod calibrate;
mod generator;
mod live;
mod mixed;
