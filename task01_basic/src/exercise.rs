//! x
pub fn f() -> u32 {
    todo!()
}
