//! The simulated gateway (being written).
