#!/usr/bin/env python3
"""LoRA supervised fine-tuning with TRL + PEFT, as a Chatgate `command` trainer.

Chatgate runs this script for a fine-tuning job (see README.md in this directory): it reads the
job's chat-format JSONL (OpenAI's fine-tuning format, already validated by Chatgate), trains a
LoRA adapter on a Hugging Face copy of the base model with the job's hyperparameters, prints
its progress as JSON lines on stdout (Chatgate's progress protocol), saves the PEFT adapter and
converts it to a GGUF LoRA adapter with llama.cpp's convert_lora_to_gguf.py, which Chatgate
then serves on top of the llama-cpp base model.

Requirements (on the training machine): torch with CUDA, transformers, trl, peft, datasets,
safetensors, accelerate; a llama.cpp checkout for the conversion, with
`pip install -r <llama.cpp>/requirements/requirements-convert_lora_to_gguf.txt`.

Not run in Chatgate's own test suite (no GPU or weights there): treat it as a starting point
and try it on your machine with a small model first.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def emit(**fields: Any) -> None:
    """One line of Chatgate's progress protocol (JSON on stdout, flushed at once)."""
    clean = {key: value for key, value in fields.items() if value is not None and not (isinstance(value, float) and not math.isfinite(value))}
    print(json.dumps(clean), flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="LoRA SFT with TRL for a Chatgate fine-tuning job")
    parser.add_argument("--training-file", required=True, help="the job's training JSONL ({training_file})")
    parser.add_argument("--validation-file", default="", help="the job's validation JSONL ({validation_file}; empty: none)")
    parser.add_argument("--output-dir", required=True, help="where checkpoints and the adapter go ({output_dir})")
    parser.add_argument("--adapter", required=True, help="the GGUF adapter to write (Chatgate's fine_tuning.adapter)")
    parser.add_argument("--hf-model", required=True, help="the base model in Hugging Face format (a directory, or a Hub id) from which its GGUF was made")
    parser.add_argument("--llama-cpp", required=True, help="a llama.cpp checkout (for convert_lora_to_gguf.py)")
    parser.add_argument("--epochs", type=int, required=True, help="{n_epochs}")
    parser.add_argument("--batch-size", type=int, required=True, help="{batch_size}: examples per optimizer step")
    parser.add_argument("--learning-rate", type=float, required=True, help="{learning_rate}")
    parser.add_argument("--seed", type=int, default=0, help="{seed}")
    parser.add_argument("--micro-batch-size", type=int, default=0, help="examples per forward pass (default: the batch size); the rest is gradient accumulation")
    parser.add_argument("--rank", type=int, default=16, help="LoRA rank")
    parser.add_argument("--alpha", type=float, default=32, help="LoRA alpha")
    parser.add_argument("--dropout", type=float, default=0.05, help="LoRA dropout")
    parser.add_argument("--target-modules", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", help="comma-separated module names to adapt")
    parser.add_argument("--max-length", type=int, default=2048, help="longest example in tokens (longer ones are truncated)")
    parser.add_argument("--assistant-only-loss", action="store_true", help="train on assistant tokens only (the chat template must mark them with {%% generation %%})")
    parser.add_argument("--outtype", default="f16", choices=["f32", "f16", "bf16", "q8_0", "auto"], help="tensor type of the GGUF adapter")
    parser.add_argument("--no-checkpoints", action="store_true", help="do not convert and report a GGUF checkpoint per epoch")
    return parser.parse_args()


def read_chat_jsonl(path: str) -> list[dict[str, Any]]:
    """OpenAI's chat fine-tuning lines as rows TRL's conversational SFT accepts.

    Text content parts are joined into one string; the per-message `weight` (OpenAI's way to
    skip an assistant turn) is dropped, since TRL has no per-message weights; `tools` are kept
    (TRL passes them to the chat template); legacy `functions` become `tools`.
    """
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            example = json.loads(line)
            messages = []
            for message in example["messages"]:
                content = message.get("content")
                if isinstance(content, list):
                    content = "".join(part.get("text", "") for part in content if part.get("type") == "text")
                converted: dict[str, Any] = {"role": message["role"], "content": content if content is not None else ""}
                if message.get("tool_calls"):
                    converted["tool_calls"] = message["tool_calls"]
                if message.get("tool_call_id"):
                    converted["tool_call_id"] = message["tool_call_id"]
                if message.get("name"):
                    converted["name"] = message["name"]
                messages.append(converted)
            row: dict[str, Any] = {"messages": messages}
            tools = example.get("tools") or [{"type": "function", "function": function} for function in example.get("functions") or []]
            if tools:
                row["tools"] = tools
            rows.append(row)
    return rows


def convert_to_gguf(llama_cpp: str, hf_model: str, peft_dir: Path, outfile: Path, outtype: str) -> None:
    """PEFT adapter directory → GGUF LoRA adapter (llama.cpp's convert_lora_to_gguf.py)."""
    script = Path(llama_cpp) / "convert_lora_to_gguf.py"
    outfile.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(script), "--base", hf_model, "--outfile", str(outfile), "--outtype", outtype, str(peft_dir)]
    # Its log goes to stderr with ours, so that a failure shows in the job's error.
    result = subprocess.run(command, stdout=sys.stderr, stderr=sys.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"convert_lora_to_gguf.py failed with code {result.returncode}")


def main() -> int:
    args = parse_args()
    # Imported here so that --help works without the training stack.
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, ProgressCallback, TrainerCallback
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTConfig, SFTTrainer

    output_dir = Path(args.output_dir)
    checkpoints_dir = output_dir / "hf-checkpoints"
    hf_model = args.hf_model
    if not Path(hf_model).is_dir():
        # convert_lora_to_gguf.py reads the base model's config.json from a directory.
        from huggingface_hub import snapshot_download

        hf_model = snapshot_download(hf_model)

    train_rows = read_chat_jsonl(args.training_file)
    eval_rows = read_chat_jsonl(args.validation_file) if args.validation_file else []
    emit(message=f"{len(train_rows)} training examples, {len(eval_rows)} validation examples", level="info")

    tokenizer = AutoTokenizer.from_pretrained(hf_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    fp16 = torch.cuda.is_available() and not bf16
    model = AutoModelForCausalLM.from_pretrained(hf_model, torch_dtype=torch.bfloat16 if bf16 else (torch.float16 if fp16 else torch.float32))

    micro_batch = args.micro_batch_size if args.micro_batch_size > 0 else args.batch_size
    micro_batch = min(micro_batch, args.batch_size)
    accumulation = max(1, args.batch_size // micro_batch)

    config = SFTConfig(
        output_dir=str(checkpoints_dir),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=micro_batch,
        per_device_eval_batch_size=micro_batch,
        gradient_accumulation_steps=accumulation,
        learning_rate=args.learning_rate,
        lr_scheduler_type="linear",
        warmup_ratio=0.0,
        seed=args.seed,
        data_seed=args.seed,
        bf16=bf16,
        fp16=fp16,
        max_length=args.max_length,
        assistant_only_loss=args.assistant_only_loss,
        logging_steps=1,
        eval_strategy="epoch" if eval_rows else "no",
        save_strategy="epoch",
        save_total_limit=2,
        report_to="none",
        gradient_checkpointing=True,
        gradient_checkpointing_kwargs={"use_reentrant": False},
    )
    lora = LoraConfig(
        r=args.rank,
        lora_alpha=args.alpha,
        lora_dropout=args.dropout,
        target_modules=[name.strip() for name in args.target_modules.split(",") if name.strip()],
        bias="none",
        task_type="CAUSAL_LM",
    )

    cli = args  # the callbacks' own `args` are the TrainingArguments

    class ChatgateProgress(TrainerCallback):
        """Reports the Trainer's logs and checkpoints in Chatgate's protocol."""

        def __init__(self) -> None:
            self.trained_tokens: float | None = None
            self.last_train_loss: float | None = None

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 - Trainer's callback signature
            if not state.is_world_process_zero or not logs:
                return
            epoch = logs.get("epoch", state.epoch)
            if "loss" in logs:
                self.last_train_loss = logs["loss"]
                if "num_tokens" in logs:
                    self.trained_tokens = logs["num_tokens"]
                emit(step=state.global_step, total_steps=state.max_steps, epoch=epoch, train_loss=logs["loss"], train_mean_token_accuracy=logs.get("mean_token_accuracy"))
            if "eval_loss" in logs:
                emit(step=state.global_step, total_steps=state.max_steps, epoch=epoch, valid_loss=logs["eval_loss"], valid_mean_token_accuracy=logs.get("eval_mean_token_accuracy"))

        def on_save(self, args, state, control, **kwargs):  # noqa: ANN001
            if cli.no_checkpoints or not state.is_world_process_zero:
                return
            peft_dir = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            gguf = output_dir / f"checkpoint-{state.global_step}.gguf"
            try:
                convert_to_gguf(cli.llama_cpp, hf_model, peft_dir, gguf, cli.outtype)
            except Exception as error:  # a checkpoint is a bonus: training goes on
                emit(message=f"Checkpoint at step {state.global_step} not converted to GGUF: {error}", level="warn")
                return
            emit(checkpoint=str(gguf), step=state.global_step, epoch=round(state.epoch or 0), train_loss=self.last_train_loss)

    progress = ChatgateProgress()
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=[progress],
    )
    # The Trainer's own printing of the same logs (Python dicts on stdout) would count twice.
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)

    # Chatgate sets CHATGATE_RESTART=1 when it starts the job again (after a pause or a crash).
    resume = None
    if os.environ.get("CHATGATE_RESTART") == "1" and checkpoints_dir.is_dir():
        resume = get_last_checkpoint(str(checkpoints_dir))
        if resume:
            emit(message=f"Resuming from {resume}", level="info")
    trainer.train(resume_from_checkpoint=resume)

    peft_dir = output_dir / "peft-adapter"
    trainer.save_model(str(peft_dir))
    convert_to_gguf(args.llama_cpp, hf_model, peft_dir, Path(args.adapter), args.outtype)
    if progress.trained_tokens is not None:
        emit(trained_tokens=int(progress.trained_tokens))
    emit(message=f"Wrote the GGUF LoRA adapter {args.adapter}", level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
