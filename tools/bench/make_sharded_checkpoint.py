#!/usr/bin/python3
"""A synthetic Hugging Face Llama checkpoint of a real model's shape, bf16, in safetensors shards
with a model.safetensors.index.json: the input for measuring t2r-pack's peak memory on an 8B model
(README, "Packing an 8B checkpoint"). Random small weights; no tokenizer (it packs ids-only).

    /usr/bin/python3 tools/bench/make_sharded_checkpoint.py OUT_DIR [--shape llama3.1-8b] [--shard-gb 5]
"""
import argparse
import json
import os
import struct

import numpy as np

SHAPES = {
    # vocab, hidden, intermediate, layers, heads, kv heads
    "llama3.1-8b": (128256, 4096, 14336, 32, 32, 8),
    "mistral-7b": (32000, 4096, 14336, 32, 32, 8),
    "tiny": (512, 64, 128, 2, 4, 2),
}


def tensors(shape):
    V, d, F, L, H, Hkv = shape
    dh = d // H
    yield "model.embed_tokens.weight", (V, d)
    for l in range(L):
        p = f"model.layers.{l}."
        yield p + "input_layernorm.weight", (d,)
        yield p + "self_attn.q_proj.weight", (H * dh, d)
        yield p + "self_attn.k_proj.weight", (Hkv * dh, d)
        yield p + "self_attn.v_proj.weight", (Hkv * dh, d)
        yield p + "self_attn.o_proj.weight", (d, H * dh)
        yield p + "post_attention_layernorm.weight", (d,)
        yield p + "mlp.gate_proj.weight", (F, d)
        yield p + "mlp.up_proj.weight", (F, d)
        yield p + "mlp.down_proj.weight", (d, F)
    yield "model.norm.weight", (d,)
    yield "lm_head.weight", (V, d)


def bf16_values(rng, count):
    # Random sign and mantissa, exponent of 2^-7: |w| in [0.0078, 0.0156).
    bits = rng.integers(0, 1 << 16, size=count, dtype=np.uint16)
    return (bits & np.uint16(0x807F)) | np.uint16(0x3C00)


def write_shard(path, names, shapes, rng):
    header, offset = {}, 0
    for name, shape in zip(names, shapes):
        size = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path + ".partial", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for shape in shapes:
            count = int(np.prod(shape))
            for start in range(0, count, 1 << 26):  # 128 MB at a time
                f.write(bf16_values(rng, min(1 << 26, count - start)).tobytes())
    os.rename(path + ".partial", path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--shape", default="llama3.1-8b", choices=sorted(SHAPES))
    parser.add_argument("--shard-gb", type=float, default=5)
    args = parser.parse_args()
    V, d, F, L, H, Hkv = SHAPES[args.shape]
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(0)
    shards, current, size = [], [], 0
    for name, shape in tensors(SHAPES[args.shape]):
        current.append((name, shape))
        size += int(np.prod(shape)) * 2
        if size >= args.shard_gb * 1e9:
            shards.append(current)
            current, size = [], 0
    if current:
        shards.append(current)
    weight_map = {}
    for i, shard in enumerate(shards):
        file = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        write_shard(os.path.join(args.out, file), [n for n, _ in shard], [s for _, s in shard], rng)
        weight_map.update({n: file for n, _ in shard})
    with open(os.path.join(args.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": V, "hidden_size": d,
        "intermediate_size": F, "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": Hkv,
        "head_dim": d // H, "hidden_act": "silu", "rms_norm_eps": 1e-5, "max_position_embeddings": 131072,
        "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192},
    }
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


if __name__ == "__main__":
    main()
