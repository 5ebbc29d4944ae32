#!/usr/bin/env python3
"""An independent float32 reference for potential-llm's forward pass
(SmolLM2, llama architecture; Gemma 3).

Reads a GGUF file with the `gguf` package (the one llama.cpp publishes),
dequantizes every tensor to float32 with `gguf.quants.dequantize` and runs a
plain numpy forward pass. llama: RMS norm, rotary embedding on consecutive
pairs of each head (llama.cpp's layout, for which GGUF converters permute the
query and key weights), grouped-query attention, SwiGLU, the output tied to
the embedding when the file has no `output.weight`. gemma3 (as llama.cpp and
transformers' Gemma3 compute it): the embedding times sqrt(dim), pre- and
post-norms around attention and the feed-forward block, RMS norms on each
query and key head, rotary embedding on the two halves of each head (NeoX),
base 10,000 on the sliding-window layers (window from the metadata, every
6th layer global with the file's base), GELU (tanh) gate. Gemma's RMS norm
is x * (1 + w) in transformers; llama.cpp's converter stores 1 + w, so the
file's weight is used as it is (checked: adding 1 again ruins the model).
Nothing here shares code with the Rust crate.

For each context of the JSON that `cargo run --release -p potential-llm
--example fidelity_contexts` writes, it takes the next-token distribution
after the prompt and the context, restricted as the `Llm` restricts it (its
vocabulary, as model ids, then EOS; the special tokens' share renormalized
away; the contexts file lists the ids, and for Gemma the byte tokens that
duplicate a token and the end-of-turn token whose probabilities are added to
that token's and to EOS's), and writes its top 1,000 log probabilities and
the log of the remaining mass into the fixture.

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install gguf numpy
    cargo run --release -p potential-llm --example fidelity_contexts > /tmp/contexts.json
    /tmp/ref/bin/python potential-llm/reference/reference.py MODEL.gguf /tmp/contexts.json \
        > potential-llm/reference/smollm2.json
    (Gemma 3: `--example fidelity_contexts -- --model gemma3`, `> gemma3.json`.)

See README.md beside this file.
"""

import json
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

TOP = 1000
NORMAL = 1  # tokenizer.ggml.token_type of an ordinary text token


def field(reader, key):
    f = reader.fields[key]
    value = f.parts[f.data[0]]
    return value.tolist()[0] if len(value) == 1 else value


def field_array(reader, key):
    f = reader.fields[key]
    return [f.parts[i].tolist()[0] for i in f.data]


class Model:
    def __init__(self, path):
        r = GGUFReader(path)
        f = r.fields["general.architecture"]
        arch = bytes(f.parts[f.data[0]]).decode()
        if arch not in ("llama", "gemma3"):
            raise SystemExit(f"unsupported architecture {arch}")
        self.gemma = arch == "gemma3"
        self.n_layer = field(r, f"{arch}.block_count")
        self.dim = field(r, f"{arch}.embedding_length")
        self.n_head = field(r, f"{arch}.attention.head_count")
        self.n_kv_head = field(r, f"{arch}.attention.head_count_kv")
        self.eps = np.float32(field(r, f"{arch}.attention.layer_norm_rms_epsilon"))
        self.rope_base = field(r, f"{arch}.rope.freq_base")
        if self.gemma:
            self.head_dim = field(r, f"{arch}.attention.key_length")
            self.window = field(r, f"{arch}.attention.sliding_window")
        else:
            self.head_dim = self.dim // self.n_head
        self.eos = field(r, "tokenizer.ggml.eos_token_id")
        types = field_array(r, "tokenizer.ggml.token_type")
        # The Llm's vocabulary order: ordinary tokens by id, EOS last.
        self.allowed = np.array(
            [i for i, t in enumerate(types) if t == NORMAL and i != self.eos] + [self.eos]
        )
        self.w = {}
        for t in r.tensors:
            rows_cols = tuple(int(x) for x in reversed(t.shape.tolist()))
            a = dequantize(t.data, t.tensor_type).astype(np.float32)
            self.w[t.name] = a.reshape(rows_cols) if len(rows_cols) > 1 else a.reshape(-1)
        if "output.weight" not in self.w:
            self.w["output.weight"] = self.w["token_embd.weight"]

    def rms_norm(self, x, weight):
        ms = np.mean(x * x, axis=-1, keepdims=True)
        return x / np.sqrt(ms + self.eps) * weight

    def rope(self, x, n, base=None):
        # x: [n, heads, head_dim]; pairs (2i, 2i+1) (llama) or (i, i + d/2)
        # (gemma) rotate by pos * base^(-2i/d).
        d = self.head_dim
        base = self.rope_base if base is None else base
        freq = 1.0 / base ** (np.arange(0, d, 2, dtype=np.float64) / d)
        angle = np.arange(n, dtype=np.float64)[:, None] * freq[None, :]
        cos = np.cos(angle).astype(np.float32)[:, None, :]
        sin = np.sin(angle).astype(np.float32)[:, None, :]
        if self.gemma:
            a, b = x[..., : d // 2], x[..., d // 2 :]
            return np.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)
        a, b = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = a * cos - b * sin
        out[..., 1::2] = a * sin + b * cos
        return out

    def gemma_logits(self, ids):
        n, hd = len(ids), self.head_dim
        x = self.w["token_embd.weight"][ids] * np.float32(np.sqrt(self.dim))
        pos = np.arange(n)
        causal = pos[None, :] <= pos[:, None]
        group = self.n_head // self.n_kv_head
        for layer in range(self.n_layer):
            p = f"blk.{layer}."
            local = (layer + 1) % 6 != 0
            allowed = causal & (pos[:, None] - pos[None, :] < self.window) if local else causal
            mask = np.where(allowed, np.float32(0), np.float32(-np.inf))
            h = self.rms_norm(x, self.w[p + "attn_norm.weight"])
            q = (h @ self.w[p + "attn_q.weight"].T).reshape(n, self.n_head, hd)
            k = (h @ self.w[p + "attn_k.weight"].T).reshape(n, self.n_kv_head, hd)
            v = (h @ self.w[p + "attn_v.weight"].T).reshape(n, self.n_kv_head, hd)
            q = self.rms_norm(q, self.w[p + "attn_q_norm.weight"])
            k = self.rms_norm(k, self.w[p + "attn_k_norm.weight"])
            base = 10000.0 if local else self.rope_base
            q, k = self.rope(q, n, base), self.rope(k, n, base)
            out = np.empty((n, self.n_head, hd), dtype=np.float32)
            for head in range(self.n_head):
                kh, vh = k[:, head // group], v[:, head // group]
                s = q[:, head] @ kh.T / np.float32(np.sqrt(hd)) + mask
                s = np.exp(s - s.max(axis=1, keepdims=True))
                out[:, head] = (s / s.sum(axis=1, keepdims=True)) @ vh
            o = out.reshape(n, -1) @ self.w[p + "attn_output.weight"].T
            x = x + self.rms_norm(o, self.w[p + "post_attention_norm.weight"])
            h = self.rms_norm(x, self.w[p + "ffn_norm.weight"])
            g = h @ self.w[p + "ffn_gate.weight"].T
            u = h @ self.w[p + "ffn_up.weight"].T
            gelu = 0.5 * g * (1 + np.tanh(np.float32(np.sqrt(2 / np.pi)) * (g + np.float32(0.044715) * g**3)))
            d = (gelu * u) @ self.w[p + "ffn_down.weight"].T
            x = x + self.rms_norm(d, self.w[p + "post_ffw_norm.weight"])
        h = self.rms_norm(x[-1], self.w["output_norm.weight"])
        return self.w["output.weight"] @ h

    def last_logits(self, ids):
        if self.gemma:
            return self.gemma_logits(ids)
        n, hd = len(ids), self.head_dim
        x = self.w["token_embd.weight"][ids]
        mask = np.triu(np.full((n, n), -np.inf, dtype=np.float32), 1)
        group = self.n_head // self.n_kv_head
        for layer in range(self.n_layer):
            p = f"blk.{layer}."
            h = self.rms_norm(x, self.w[p + "attn_norm.weight"])
            q = (h @ self.w[p + "attn_q.weight"].T).reshape(n, self.n_head, hd)
            k = (h @ self.w[p + "attn_k.weight"].T).reshape(n, self.n_kv_head, hd)
            v = (h @ self.w[p + "attn_v.weight"].T).reshape(n, self.n_kv_head, hd)
            q, k = self.rope(q, n), self.rope(k, n)
            out = np.empty((n, self.n_head, hd), dtype=np.float32)
            for head in range(self.n_head):
                kh, vh = k[:, head // group], v[:, head // group]
                s = q[:, head] @ kh.T / np.float32(np.sqrt(hd)) + mask
                s = np.exp(s - s.max(axis=1, keepdims=True))
                out[:, head] = (s / s.sum(axis=1, keepdims=True)) @ vh
            x = x + out.reshape(n, -1) @ self.w[p + "attn_output.weight"].T
            h = self.rms_norm(x, self.w[p + "ffn_norm.weight"])
            g = h @ self.w[p + "ffn_gate.weight"].T
            u = h @ self.w[p + "ffn_up.weight"].T
            x = x + (g / (1 + np.exp(-g)) * u) @ self.w[p + "ffn_down.weight"].T
        h = self.rms_norm(x[-1], self.w["output_norm.weight"])
        return self.w["output.weight"] @ h


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    model = Model(sys.argv[1])
    contexts = json.load(open(sys.argv[2]))
    duplicates = []
    if isinstance(contexts, dict):
        # The Llm's own lists: its vocabulary as model ids, EOS's ids, and
        # the ids whose mass is added to a vocabulary token's.
        vocab = np.array(contexts["vocab_ids"])
        eos_ids = np.array(contexts["eos_ids"])
        duplicates = contexts["duplicates"]
        contexts = contexts["contexts"]
    else:
        vocab, eos_ids = model.allowed[:-1], np.array([model.eos])
    fixture = []
    for c in contexts:
        ids = list(c["prompt_ids"]) + [int(vocab[i]) for i in c["context"]]
        full = model.last_logits(np.array(ids)).astype(np.float64)
        logits = np.append(full[vocab], np.logaddexp.reduce(full[eos_ids]))
        for d, pos in duplicates:
            logits[pos] = np.logaddexp(logits[pos], full[d])
        logp = logits - logits.max()
        logp -= np.log(np.exp(logp).sum())
        top = np.argsort(-logp, kind="stable")[:TOP]
        tail = 1.0 - np.exp(logp[top]).sum()
        fixture.append({
            "name": c["name"],
            "prompt": c["prompt"],
            "prompt_ids": c["prompt_ids"],
            "context": c["context"],
            "top": [int(i) for i in top],
            "logp": [round(float(v), 6) for v in logp[top]],
            "tail_logp": float(np.log(max(tail, 1e-300))),
        })
        print(f"{c['name']}: {len(ids)} tokens, top {int(top[0])} logp {logp[top[0]]:.4f}, "
              f"tail mass {tail:.3e}", file=sys.stderr)
    json.dump({"model": sys.argv[1].rsplit("/", 1)[-1], "top": TOP, "contexts": fixture},
              sys.stdout, separators=(",", ":"))
    print()


if __name__ == "__main__":
    main()
