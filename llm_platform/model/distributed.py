"""`training.num_processes` > 1: the same training loop under `torchrun`, one process per device (DDP).

The launching process writes the run (its TrainingRequest) to a job file,
starts `torchrun` on this module and follows rank 0's progress file, so
`on_step` still sees every step; rank 0 writes the result (or the step an
interruption stopped at) for it to read back. The same job file and module are
what a Kubeflow PyTorchJob's pods run when training spans several machines
(see `pytorch_job.py`); there `torchrun` takes its node count and rendezvous
from the operator's PET_* environment variables.

    python -m llm_platform.model.distributed JOB_FILE    # run by torchrun, never by hand
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

from llm_platform.model.training_request import TrainingInterrupted, TrainingRequest, TrainResult

RUN_DIR, JOB_FILE, RESULT_FILE, PROGRESS_FILE, LOG_FILE = (
    "distributed",
    "job.json",
    "result.json",
    "progress.jsonl",
    "torchrun.log",
)
LOG_TAIL_LINES = 30
POLL_SECONDS = 0.5


def write_job(request: TrainingRequest) -> str:
    """Write the run's job file under its output_dir/distributed (clearing an earlier result); return its path."""
    run_dir = os.path.join(request.output_dir, RUN_DIR)
    os.makedirs(run_dir, exist_ok=True)
    for stale in [RESULT_FILE, PROGRESS_FILE, *glob.glob(os.path.join(run_dir, "error-rank-*.txt"))]:
        if os.path.exists(os.path.join(run_dir, stale)):
            os.remove(os.path.join(run_dir, stale))
    path = os.path.join(run_dir, JOB_FILE)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(request.to_json())
    return path


def read_job(job_file: str) -> TrainingRequest:
    """The request `write_job` wrote to `job_file`."""
    with open(job_file, encoding="utf-8") as handle:
        return TrainingRequest.from_json(handle.read())


def torchrun_command(job_file: str, num_processes: int) -> list[str]:
    """The command that trains on `num_processes` processes of this machine."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={num_processes}",
        "-m",
        "llm_platform.model.distributed",
        job_file,
    ]


def read_outcome(output_dir: str) -> TrainResult:
    """Return the result rank 0 wrote, or raise the TrainingInterrupted it recorded."""
    path = os.path.join(output_dir, RUN_DIR, RESULT_FILE)
    if not os.path.exists(path):
        raise RuntimeError(
            f"distributed training wrote no result to {path}; see {os.path.join(output_dir, RUN_DIR, LOG_FILE)}"
        )
    with open(path, encoding="utf-8") as handle:
        outcome = json.load(handle)
    if "interrupted" in outcome:
        raise TrainingInterrupted(outcome["interrupted"]["step"], outcome["interrupted"]["checkpoint_dir"])
    return TrainResult(**outcome["result"])


def follow_progress(path: str, seen: int, on_step: Callable[[int, float], None] | None) -> int:
    """Pass progress lines after the first `seen` to on_step; return how many lines there are now."""
    if not os.path.exists(path):
        return seen
    with open(path, encoding="utf-8") as handle:
        lines = [line for line in handle.read().splitlines() if line.endswith("}")]
    for line in lines[seen:]:
        if on_step is not None:
            record = json.loads(line)
            on_step(record["step"], record["loss"])
    return len(lines)


def _log_tail(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return "".join(handle.readlines()[-LOG_TAIL_LINES:])


def launch_training(request: TrainingRequest, on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """Run `train_lora` on config.num_processes local processes under torchrun and return rank 0's result."""
    job_file, processes = write_job(request), request.config.num_processes
    run_dir = os.path.dirname(job_file)
    progress, log_path, seen = os.path.join(run_dir, PROGRESS_FILE), os.path.join(run_dir, LOG_FILE), 0
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(torchrun_command(job_file, processes), stdout=log, stderr=subprocess.STDOUT)
        while process.poll() is None:
            seen = follow_progress(progress, seen, on_step)
            time.sleep(POLL_SECONDS)
    follow_progress(progress, seen, on_step)
    if process.returncode != 0:
        reasons = rank_errors(run_dir) or f"the last lines of the log:\n{_log_tail(log_path)}"
        raise RuntimeError(
            f"torchrun with {processes} processes failed (exit code {process.returncode}); "
            f"full log: {log_path}; {reasons}"
        )
    return read_outcome(request.output_dir)


def rank_errors(run_dir: str) -> str:
    """The errors the processes recorded before failing, one line per rank ('' when none did)."""
    paths = sorted(glob.glob(os.path.join(run_dir, "error-rank-*.txt")))
    return "\n".join(f"{os.path.basename(p)[6:-4]}: {open(p, encoding='utf-8').read()}" for p in paths)


def _progress_writer(path: str) -> Callable[[int, float], None]:
    def write(step: int, loss: float) -> None:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": step, "loss": loss}) + "\n")

    return write


def _write_outcome(output_dir: str, outcome: dict) -> None:
    path = os.path.join(output_dir, RUN_DIR, RESULT_FILE)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(outcome, handle)
    os.replace(path + ".tmp", path)


def run_worker(job_file: str) -> None:
    """One torchrun process: join the process group, run the loop, and on rank 0 record the outcome."""
    import torch
    import torch.distributed as dist

    from llm_platform.model.loop import run_training

    request = read_job(job_file)
    use_cuda = request.config.device != "cpu" and torch.cuda.is_available()
    dist.init_process_group("nccl" if use_cuda else "gloo")
    rank, run_dir = dist.get_rank(), os.path.dirname(job_file)
    try:
        result = run_training(request, _progress_writer(os.path.join(run_dir, PROGRESS_FILE)))
        outcome = {"result": dataclasses.asdict(result)}
    except TrainingInterrupted as stopped:
        outcome = {"interrupted": {"step": stopped.step, "checkpoint_dir": stopped.checkpoint_dir}}
    except Exception as error:
        # torchrun's own summary shows only exit codes; the launching process reports these messages.
        with open(os.path.join(run_dir, f"error-rank-{rank}.txt"), "w", encoding="utf-8") as handle:
            handle.write(f"{type(error).__name__}: {error}")
        raise
    finally:
        dist.destroy_process_group()
    if rank == 0:
        _write_outcome(request.output_dir, outcome)


if __name__ == "__main__":
    run_worker(sys.argv[1])
