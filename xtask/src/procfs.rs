//! What the benchmarks read of a process's CPU time in `/proc` (Linux), in clock ticks. Shared by
//! `cargo xtask bench-rs` and the `bench-as` crate, which includes this file by its path: the two
//! are separate crates, and xtask stays dependency-free.

use std::{fs, process::Command};

/// Clock ticks a second, the unit of `/proc/<pid>/stat` (`getconf CLK_TCK`: no libc here); 100
/// when that fails.
pub(crate) fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100)
}

/// Fields 14 to 17 of `/proc/{pid}/stat` (`pid` a number or `self`): `utime`, `stime`,
/// `cutime` and `cstime` (the last two: reaped children), in clock ticks.
pub(crate) fn stat_times(pid: &str) -> Result<[u64; 4], String> {
    let path = format!("/proc/{pid}/stat");
    let text = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // The fields after the command name, which may hold spaces and ends at the last ')':
    // state is field 3, so field n is at n - 3.
    let fields: Vec<&str> = text
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |number: usize| -> Result<u64, String> {
        fields
            .get(number - 3)
            .and_then(|f| f.parse::<i64>().ok())
            .map(|v| v.max(0).unsigned_abs())
            .ok_or_else(|| format!("{path}: no field {number}"))
    };
    Ok([field(14)?, field(15)?, field(16)?, field(17)?])
}
