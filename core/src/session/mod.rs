//! The sans-I/O session (placeholder while the state machine is written).
