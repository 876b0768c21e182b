//! klang's digital signal processing: a pure core with no I/O.
#![forbid(unsafe_code)]
