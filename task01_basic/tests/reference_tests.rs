//! r
#![cfg(feature = "reference")]
#[test]
fn f_is_one() {
    assert_eq!(task01_basic::f(), 1);
}
