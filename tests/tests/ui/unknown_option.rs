use potential_core::{Potential, Vocab};

#[derive(Potential)]
#[potential(token = u8, spawn = false)]
struct Length {
    #[potential(vocabulary)]
    vocab: Vocab<u8>,
}

fn main() {}
