//! testkit
/// x
pub const X: u8 = 1;
