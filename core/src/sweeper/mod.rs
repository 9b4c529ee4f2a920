//! The sweeper (being written).
