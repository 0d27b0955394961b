//! Lattice's benchmark suite (issue 12): reconciliation side by side with negentropy on
//! the same id sets, ingest rates and the cost of opening and verifying a big store.
//!
//! Not shipped and not part of the test run beyond one tiny case of each subcommand
//! (`tests/smoke.rs`), so it cannot rot. Figures and the commands that made them are in
//! the repository's `BENCHMARKS.md`.

pub mod corpus;
pub mod ingest;
pub mod proc;
pub mod reconcile;
pub mod scale;
pub mod wire;
