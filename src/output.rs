//! Writing to stdout as `grep` does: when the reader goes away (`ingot tables | head -1`) the
//! process ends quietly instead of panicking on the broken pipe.

use std::io::{ErrorKind, Write};

/// `println!`, ending the process quietly once stdout is closed.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::output::write(format_args!("{}\n", format_args!($($arg)*)).to_string().as_bytes()) };
}
pub(crate) use outln;

/// Writes `bytes` to stdout and flushes; a closed stdout ends the process with success (the
/// reader has all it wanted), any other failure is reported and ends it with failure.
pub fn write(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: write to stdout: {e}");
        std::process::exit(1);
    }
}
