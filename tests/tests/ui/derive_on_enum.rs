use potential_core::{Potential, Vocab};

#[derive(Potential)]
enum Tokens {
    Bytes(Vocab<u8>),
    Ids(Vocab<u32>),
}

fn main() {}
