pub fn health_main(_args: &[String]) -> i32 {
    1
}
