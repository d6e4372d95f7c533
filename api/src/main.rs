//! The `znovel` binary.
fn main() {}
