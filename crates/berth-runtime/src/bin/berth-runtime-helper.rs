//! Stand-in for the berth binary's hidden entry points, used by this crate's tests and
//! benchmarks (`RuntimeOptions::helper_exe`). The real binary calls
//! `berth_runtime::hidden_main()` the same way.

fn main() {
    match berth_runtime::hidden_main() {
        Some(code) => std::process::exit(code),
        None => {
            eprintln!("berth-runtime-helper: only hidden entry points are supported");
            std::process::exit(2);
        }
    }
}
