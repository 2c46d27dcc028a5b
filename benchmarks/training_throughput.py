"""LoRA training throughput of `train_lora`: tokens/second, seconds, device, dtype, peak memory.

    .venv/bin/python benchmarks/training_throughput.py                        # tiny local model, built first
    .venv/bin/python benchmarks/training_throughput.py --base-model PATH_OR_ID --device cuda --steps 50

The examples are the demo's curated pairs, repeated until one epoch is exactly
`--steps` optimizer steps. Seconds and tokens/second are train_lora's own figures
(the training loop, checkpoint writes included, model load and final save not);
tokens are the non-padding tokens fed to the model. Peak memory is CUDA
max_memory_allocated on a GPU, else the process's peak RSS (which includes the
tiny model's build and pre-training when no --base-model is given).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_platform.model.base_model import TinyModelConfig, build_local_base_model  # noqa: E402
from llm_platform.model.sft import read_curated_pairs  # noqa: E402
from llm_platform.model.training import LoraTrainingConfig, train_lora  # noqa: E402

CURATED = Path(__file__).resolve().parents[1] / "llm_platform" / "demo" / "sft" / "curated.jsonl"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-model", help="HF hub id (must be cached) or local folder; default: build the tiny model")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads; 0: torch's default")
    parser.add_argument("--checkpoint-every", type=int, default=0, help="0: no checkpoints during the run")
    return parser.parse_args(argv)


def demo_examples(count: int) -> list[tuple[str, str]]:
    """The demo's curated pairs, cycled to `count` examples."""
    pairs, _ = read_curated_pairs(str(CURATED), CURATED.read_bytes())
    return [(pairs[i % len(pairs)].instruction, pairs[i % len(pairs)].response) for i in range(count)]


def tiny_base_model(folder: str) -> str:
    """Build the default tiny local model from Python's help topics into `folder`."""
    from pydoc_data.topics import topics

    started = time.perf_counter()
    info = build_local_base_model([text for _, text in sorted(topics.items())], TinyModelConfig(), folder)
    print(f"built {info.name} ({info.num_parameters:,} parameters) in {time.perf_counter() - started:.1f} s")
    return info.path


def peak_memory_mib(device: str) -> tuple[float, str]:
    """Peak memory in MiB and what it measures."""
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20, "cuda max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak RSS"


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its figures, then one JSON line with the same figures."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = LoraTrainingConfig(
        rank=args.rank, alpha=2 * args.rank, epochs=1, batch_size=args.batch_size, max_length=args.max_length,
        checkpoint_every_steps=args.checkpoint_every or args.steps + 1, device=args.device,
    )
    with tempfile.TemporaryDirectory() as work:
        base = args.base_model or tiny_base_model(str(Path(work) / "base"))
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        result = train_lora(base_model_dir=base, examples=demo_examples(args.steps * args.batch_size),
                            config=config, output_dir=str(Path(work) / "run"))
    memory, memory_kind = peak_memory_mib(result.device)
    figures = {
        "base_model": args.base_model or "tiny-local", "steps": result.steps, "batch_size": args.batch_size,
        "max_length": args.max_length, "tokens": result.tokens_seen, "seconds": round(result.seconds, 3),
        "tokens_per_second": round(result.tokens_per_second, 1), "device": result.device, "dtype": result.dtype,
        "peak_memory_mib": round(memory, 1), "peak_memory_kind": memory_kind,
        "final_loss": round(result.losses[-1], 4), "torch": version("torch"), "transformers": version("transformers"),
        "peft": version("peft"), "cpu_threads": torch.get_num_threads(), "machine": platform.machine(),
    }
    print(f"tokens/second {figures['tokens_per_second']:,}  ({result.tokens_seen:,} tokens in {result.seconds:.2f} s, "
          f"{result.steps} steps)")
    print(f"device {result.device}  dtype {result.dtype}  peak memory {memory:,.0f} MiB ({memory_kind})")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
