#!/usr/bin/env python3
"""An independent float32 reference for potential-llm's SmolLM2 forward pass.

Reads a llama-architecture GGUF file with the `gguf` package (the one
llama.cpp publishes), dequantizes every tensor to float32 with
`gguf.quants.dequantize` and runs a plain numpy forward pass: RMS norm,
rotary embedding on consecutive pairs of each head (llama.cpp's layout, for
which GGUF converters permute the query and key weights), grouped-query
attention, SwiGLU, the output tied to the embedding when the file has no
`output.weight`. Nothing here shares code with the Rust crate.

For each context of the JSON that `cargo run --release -p potential-llm
--example fidelity_contexts` writes, it takes the next-token distribution
after the prompt and the context, restricted as the `Llm` restricts it (the
ordinary tokens in id order, then the end-of-sequence token; the special
tokens' share renormalized away), and writes its top 1,000 log
probabilities and the log of the remaining mass into the fixture.

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install gguf numpy
    cargo run --release -p potential-llm --example fidelity_contexts > /tmp/contexts.json
    /tmp/ref/bin/python potential-llm/reference/reference.py MODEL.gguf /tmp/contexts.json \
        > potential-llm/reference/smollm2.json

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
        if arch != "llama":
            raise SystemExit(f"unsupported architecture {arch}")
        self.n_layer = field(r, "llama.block_count")
        self.dim = field(r, "llama.embedding_length")
        self.n_head = field(r, "llama.attention.head_count")
        self.n_kv_head = field(r, "llama.attention.head_count_kv")
        self.eps = np.float32(field(r, "llama.attention.layer_norm_rms_epsilon"))
        self.rope_base = field(r, "llama.rope.freq_base")
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

    def rope(self, x, n):
        # x: [n, heads, head_dim]; pairs (2i, 2i+1) rotate by pos * base^(-2i/d).
        d = self.head_dim
        freq = 1.0 / self.rope_base ** (np.arange(0, d, 2, dtype=np.float64) / d)
        angle = np.arange(n, dtype=np.float64)[:, None] * freq[None, :]
        cos = np.cos(angle).astype(np.float32)[:, None, :]
        sin = np.sin(angle).astype(np.float32)[:, None, :]
        a, b = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = a * cos - b * sin
        out[..., 1::2] = a * sin + b * cos
        return out

    def last_logits(self, ids):
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
    fixture = []
    for c in contexts:
        ids = list(c["prompt_ids"]) + [int(model.allowed[i]) for i in c["context"]]
        logits = model.last_logits(np.array(ids)).astype(np.float64)[model.allowed]
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
