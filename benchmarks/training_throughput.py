"""LoRA training throughput: lora_adapter's loop (`train_lora`) beside a plain `transformers.Trainer` + peft script.

    .venv/bin/python benchmarks/training_throughput.py                  # CPU: a 4-layer Qwen2 model
    .venv/bin/python benchmarks/training_throughput.py --device cuda    # GPU: a Qwen2.5-0.5B-shaped model, bf16

Both sides train the same Qwen2-architecture model (built from a config with
random weights, saved in Hugging Face format, loaded by each side from disk)
on the same examples, encoded by the same function, for the same number of
optimizer steps of the same batch size, with the same LoRA settings. Each side
runs in its own child process, so peak memory is its own: CUDA
max_memory_allocated on a GPU, peak RSS on a CPU. Tokens are the examples'
non-padding tokens (identical on both sides); seconds are the training loop's
(model loading and saving excluded on both sides).

The examples are Python's help topics as (instruction, response) pairs: real
text with the wide spread of lengths real SFT data has. The plain script is the
one the transformers and peft docs lead a user to write: `Trainer` with its
defaults (random batches padded by `DataCollatorForSeq2Seq`, bf16 autocast on a GPU).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Qwen2.5-0.5B's published shape (494M parameters with this vocabulary), and a few-layer one for CPUs.
PRESETS = {
    "0.5b": {
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 151_936,
        "rope_theta": 1_000_000.0,
    },
    "cpu": {
        "hidden_size": 256,
        "intermediate_size": 768,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": None,
        "rope_theta": 1_000_000.0,
    },
}
TOKENIZER_VOCAB = 8192
SIDES = ("trainer", "lora_adapter")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="model shape; default: 0.5b on cuda, cpu on cpu")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps; default 60 on cuda, 20 on cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads on CPU; 0: torch's default")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.preset = args.preset or ("0.5b" if args.device == "cuda" else "cpu")
    args.steps = args.steps or (60 if args.device == "cuda" else 20)
    return args


def topic_pairs(count: int) -> list[tuple[str, str]]:
    """Python's help topics as (instruction, response) pairs, cycled to `count`."""
    from pydoc_data.topics import topics

    pairs = [(f"Explain the Python topic '{name}'.", text) for name, text in sorted(topics.items())]
    return [pairs[i % len(pairs)] for i in range(count)]


def build_model(folder: str, preset: str, device: str) -> int:
    """Save a Qwen2 model of `preset`'s shape (random weights) and a
    corpus tokenizer to folder; return its parameters.
    """
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from llm_platform.model.base_model import train_corpus_tokenizer

    tokenizer = train_corpus_tokenizer([text for _, text in topic_pairs(200)], vocab_size=TOKENIZER_VOCAB)
    shape = {**PRESETS[preset], "vocab_size": PRESETS[preset]["vocab_size"] or len(tokenizer)}
    config = Qwen2Config(
        **shape,
        max_position_embeddings=32_768,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    if device == "cuda":
        # As published checkpoints are: both sides then load bf16 weights with dtype="auto".
        model = model.to(torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model.num_parameters()


def peak_memory_mib(device: str) -> float:
    """This process's peak memory: CUDA allocations on a GPU, resident set on a CPU."""
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def lora_config(args):
    """The LoRA settings both sides use."""
    from llm_platform.config import TrainingSettings

    return TrainingSettings(
        rank=args.rank,
        alpha=2 * args.rank,
        dropout=0.05,
        epochs=1,
        batch_size=args.batch_size,
        max_length=args.max_length,
        checkpoint_every_steps=args.steps + 1,
        device=args.device,
    )


def run_lora_adapter(args, examples, work: str) -> dict:
    """lora_adapter's loop, exactly as the asset calls it."""
    from llm_platform.model.training import train_lora
    from llm_platform.model.training_request import TrainingRequest

    result = train_lora(
        TrainingRequest(base_model_dir=args.model, examples=examples, config=lora_config(args), output_dir=work)
    )
    return {
        "tokens": result.tokens_seen,
        "seconds": result.seconds,
        "padding_share": result.padding_share,
        "final_loss": result.losses[-1],
        "dtype": result.dtype,
    }


def run_trainer(args, examples, work: str) -> dict:
    """The plain script: peft's get_peft_model and transformers' Trainer with its defaults."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from llm_platform.model.batching import encode_example

    config = lora_config(args)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model)
    model = get_peft_model(
        model,
        LoraConfig(
            r=config.rank,
            lora_alpha=config.alpha,
            lora_dropout=config.dropout,
            target_modules=list(config.target_modules),
            task_type="CAUSAL_LM",
        ),
    )
    rows = []
    for question, answer in examples:
        ids, labels = encode_example(tokenizer, question, answer, max_length=config.max_length)
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    training_args = TrainingArguments(
        output_dir=work,
        per_device_train_batch_size=config.batch_size,
        max_steps=args.steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=max(1, args.steps // 10),
        bf16=args.device == "cuda",
        use_cpu=args.device == "cpu",
        save_strategy="no",
        report_to="none",
        logging_steps=args.steps,
        remove_unused_columns=False,
        seed=config.seed,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=rows,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
    )
    if args.device == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    output = trainer.train()
    if args.device == "cuda":
        torch.cuda.synchronize()
    return {
        "tokens": sum(len(r["input_ids"]) for r in rows),
        "seconds": time.perf_counter() - began,
        "padding_share": None,
        "final_loss": output.training_loss,
        "dtype": str(model.dtype).removeprefix("torch."),
    }


def run_side(args) -> None:
    """Child process: train one side and print its figures as one JSON line."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    examples = topic_pairs(args.steps * args.batch_size)
    with tempfile.TemporaryDirectory() as work:
        figures = (run_trainer if args.side == "trainer" else run_lora_adapter)(args, examples, work)
    figures.update(
        side=args.side,
        tokens_per_second=figures["tokens"] / figures["seconds"],
        peak_memory_mib=peak_memory_mib(args.device),
    )
    print(json.dumps(figures))


def run_child(side: str, model: str, argv: list[str]) -> dict:
    """Run one side in a fresh process and return its figures."""
    command = [sys.executable, __file__, *argv, "--side", side, "--model", model]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the {side} side failed (exit code {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def device_name(device: str) -> str:
    """The GPU's name, or the CPU architecture."""
    import torch

    return torch.cuda.get_device_name() if device == "cuda" else f"{platform.machine()} CPU"


def report(args, parameters: int, sides: dict[str, dict]) -> None:
    """Print the two sides side by side, the ratio, then one JSON line with everything."""
    ours, plain = sides["lora_adapter"], sides["trainer"]
    print(
        f"Qwen2 {args.preset} ({parameters / 1e6:,.1f}M parameters) on {device_name(args.device)}: "
        f"{args.steps} steps x {args.batch_size} examples, max_length {args.max_length}, LoRA rank {args.rank}"
    )
    print(f"{'':22}{'tokens/s':>12}{'seconds':>10}{'peak MiB':>11}{'padding':>9}{'final loss':>12}")
    for name, side in (("Trainer + peft", plain), ("lora_adapter loop", ours)):
        padding = "-" if side["padding_share"] is None else f"{side['padding_share']:.0%}"
        print(
            f"{name:22}{side['tokens_per_second']:12,.0f}{side['seconds']:10.2f}{side['peak_memory_mib']:11,.0f}"
            f"{padding:>9}{side['final_loss']:12.4f}"
        )
    ratio = ours["tokens_per_second"] / plain["tokens_per_second"]
    memory = ours["peak_memory_mib"] / plain["peak_memory_mib"]
    print(
        f"lora_adapter / Trainer: {ratio:.2f}x tokens/s at {memory:.2f}x peak "
        "memory (target on a GPU: >= 1.2x at <= 1.0x)"
    )
    print(
        json.dumps(
            {
                "device": device_name(args.device),
                "preset": args.preset,
                "parameters": parameters,
                "steps": args.steps,
                "batch_size": args.batch_size,
                "max_length": args.max_length,
                "ratio": round(ratio, 3),
                "memory_ratio": round(memory, 3),
                "sides": sides,
                "torch": version("torch"),
                "transformers": version("transformers"),
                "peft": version("peft"),
            }
        )
    )


def main(argv: list[str] | None = None) -> None:
    """Build the model once, train it on both sides in child processes, and report."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.side:
        run_side(args)
        return
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "--device cuda needs a visible CUDA GPU and the CUDA build of torch (see k8s/Dockerfile); "
            "run without --device for the CPU comparison"
        )
    with tempfile.TemporaryDirectory() as folder:
        parameters = build_model(folder, args.preset, args.device)
        sides = {side: run_child(side, folder, argv) for side in SIDES}
    report(args, parameters, sides)


if __name__ == "__main__":
    main()
