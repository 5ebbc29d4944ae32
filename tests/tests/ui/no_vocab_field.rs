use potential_core::Potential;

#[derive(Potential)]
struct Length {
    tokens: Vec<u8>,
    max: usize,
}

fn main() {}
