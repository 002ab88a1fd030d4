pub fn supervisor_main(_args: &[String]) -> i32 {
    1
}
