use potential_core::{Potential, Vocab};

#[derive(Potential)]
struct Marked {
    #[potential(vocab)]
    bytes: Vocab<u8>,
    #[potential(vocab)]
    ids: Vocab<u32>,
}

// Unmarked, two fields of type `Vocab<_>` are as ambiguous.
#[derive(Potential)]
struct Unmarked {
    bytes: Vocab<u8>,
    ids: Vocab<u32>,
}

fn main() {}
