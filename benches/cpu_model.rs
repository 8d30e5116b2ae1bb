//! The CPU model for a benchmark table's header (figures differ between
//! hosts). Shared by the baseline crates through `#[path]`.

/// `"MODEL, N logical CPUs"` from /proc/cpuinfo, or `"unknown CPU"`.
pub fn cpu_model() -> String {
    let n = std::thread::available_parallelism().map_or(0, |n| n.get());
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .map_or_else(
            || "unknown CPU".into(),
            |m| format!("{m}, {n} logical CPUs"),
        )
}
