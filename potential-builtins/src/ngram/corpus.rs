//! How the model reads text: paragraphs become training sequences, and
//! paragraphs split into pieces from which the tokenizer learns.

/// The paragraphs of `text` (separated by lines that hold only whitespace),
/// each with every run of whitespace replaced by one space and trimmed.
/// Each becomes one training sequence, ended by EOS.
pub(crate) fn paragraphs(text: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let mut words = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .peekable();
        if words.peek().is_none() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        for word in words {
            if !current.is_empty() {
                current.push(b' ');
            }
            current.extend_from_slice(word);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Splits text into the pieces inside which the tokenizer learns merges,
/// so that no learned token spans two words: an optional leading space
/// followed by either a run of ASCII letters and digits or one other byte
/// (`" Alice"`, `","`, `" `"`).
pub(crate) fn pieces(text: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let start = i;
        if text[i] == b' ' {
            i += 1;
        }
        if i < text.len() && text[i].is_ascii_alphanumeric() {
            while i < text.len() && text[i].is_ascii_alphanumeric() {
                i += 1;
            }
        } else if i < text.len() && text[i] != b' ' {
            i += 1;
        }
        out.push(&text[start..i]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_collapse_whitespace_and_split_on_blank_lines() {
        let text = b"  Alice was\nbeginning  to\n\n \n`Oh dear!'\n";
        assert_eq!(
            paragraphs(text),
            vec![b"Alice was beginning to".to_vec(), b"`Oh dear!'".to_vec()]
        );
        assert!(paragraphs(b"\n \n").is_empty());
    }

    #[test]
    fn pieces_keep_a_leading_space_with_the_word() {
        let p: Vec<&[u8]> = pieces(b"`Oh dear, I  said'");
        let expected: Vec<&[u8]> = vec![b"`", b"Oh", b" dear", b",", b" I", b" ", b" said", b"'"];
        assert_eq!(p, expected);
        assert_eq!(pieces(b"").len(), 0);
    }
}
