//! vmgate's policy model and compiler: a pure core with no I/O.
#![forbid(unsafe_code)]
