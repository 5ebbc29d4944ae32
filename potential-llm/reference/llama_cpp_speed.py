"""llama.cpp's speed on a GGUF file, the reference beside the bench rows
`llm_step`/`llm_batch_gain` (SmolLM2) and `gemma_step`/`gemma_batch_gain`
(Gemma 3): run once by a developer on the machine the rows ran on (see
README.md), never by CI.

Measured, with every position's logits kept (`logits_all`, as a batch of
particles needs a distribution per row), for 1 and 2 threads:

- step: a one-token step that extends a cached context of 33 tokens (the
  KV cache is cut back to the context before each step), median of 25;
- pass32: 32 tokens in one pass after a cached 17-token prompt, per token,
  median of 5; llama.cpp's analogue of 32 particles' one-token steps in one
  batch (easier for it: the 32 share one cache), and `step / pass32` its
  batch gain.

Usage: python llama_cpp_speed.py MODEL.gguf [MODEL.gguf ...]
Prints one JSON object per file and thread count.
"""

import json
import statistics
import sys
import time

from llama_cpp import Llama

TEXT = (
    "The old library stood at the end of the street, its shelves full of "
    "books that nobody had opened in years. Every morning the keeper "
    "unlocked the door, swept the floor and waited for a reader who never "
    "came, until one winter day a girl walked in and asked for a map of "
    "the stars, and the keeper climbed the ladder to the highest shelf."
)


def measure(path, threads):
    llm = Llama(
        model_path=path,
        n_ctx=256,
        n_batch=64,
        n_threads=threads,
        n_threads_batch=threads,
        logits_all=True,
        verbose=False,
    )
    tokens = llm.tokenize(TEXT.encode(), add_bos=True)
    assert len(tokens) >= 17 + 33, len(tokens)
    prompt, ctx = tokens[:17], tokens[:33]
    # Warm up: one pass over the context.
    llm.reset()
    llm.eval(ctx)
    steps = []
    for i in range(25):
        llm.n_tokens = len(ctx)
        t = tokens[33 + i % 16]
        start = time.perf_counter()
        llm.eval([t])
        steps.append(time.perf_counter() - start)
    passes = []
    for _ in range(5):
        llm.n_tokens = len(prompt)
        batch = tokens[17 : 17 + 32]
        start = time.perf_counter()
        llm.eval(batch)
        passes.append((time.perf_counter() - start) / len(batch))
    step = statistics.median(steps) * 1e3
    per_token = statistics.median(passes) * 1e3
    return {
        "model": path.rsplit("/", 1)[-1],
        "threads": threads,
        "step_ms": round(step, 2),
        "pass32_ms_per_token": round(per_token, 2),
        "batch_gain": round(step / per_token, 2),
    }


def main():
    for path in sys.argv[1:]:
        for threads in (2, 1):
            print(json.dumps(measure(path, threads)), flush=True)


if __name__ == "__main__":
    main()
