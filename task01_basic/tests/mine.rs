//! mine
#[test]
fn f_positive() {
    assert!(task01_basic::f() > 0);
}
