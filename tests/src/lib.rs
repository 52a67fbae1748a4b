//! Black-box tests of the whole service; see `tests/*.rs`. Each test spawns the real application on a fresh
//! database and runs once per backend.
