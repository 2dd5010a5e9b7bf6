"""Settings that bound each other, checked once the whole config is known (file and every override), so a
contradiction fails at load naming both keys instead of after the stages that do not use them have run."""

from __future__ import annotations

from rge_core.config.errors import ConfigError
from rge_core.config.schema import Config


def _problems(config: Config) -> list[str]:
    model, curation, train, ev = config.model, config.curation, config.train, config.eval
    problems = []
    if model.min_pixels and model.max_pixels and model.min_pixels > model.max_pixels:  # 0: the processor's own
        problems.append(f"model.min_pixels ({model.min_pixels}) > model.max_pixels ({model.max_pixels})")
    if curation.min_chars > curation.max_chars:
        problems.append(f"curation.min_chars ({curation.min_chars}) > curation.max_chars ({curation.max_chars})")
    # A rationale must fit in the context with its prompt.
    lengths = [
        (
            "curation.decoding.max_new_tokens",
            curation.decoding.max_new_tokens,
            "curation.max_model_len",
            curation.max_model_len,
        )
    ]
    if ev.engine == "vllm":
        lengths.append(
            (
                "eval.decoding.max_new_tokens",
                ev.decoding.max_new_tokens,
                "eval.vllm.max_model_len",
                ev.vllm.max_model_len,
            )
        )
    if train.rationale_engine == "vllm":
        lengths.append(
            (
                "train.decoding.max_new_tokens",
                train.decoding.max_new_tokens,
                "train.vllm.max_model_len",
                train.vllm.max_model_len,
            )
        )
    ranks = [
        ("curation.node_rank", curation.node_rank, "curation.num_nodes", curation.num_nodes),
        ("train.launch.node_rank", train.launch.node_rank, "train.launch.nnodes", train.launch.nnodes),
    ]
    for low, low_value, high, high_value in [*lengths, *ranks]:
        if low_value >= high_value:
            problems.append(f"{low} ({low_value}) must be below {high} ({high_value})")
    return problems


def check_bounds(config: Config) -> Config:
    """`config`, or a ConfigError naming the first pair of settings that contradict each other."""
    problems = _problems(config)
    if problems:
        raise ConfigError(f"contradictory settings: {problems[0]}")
    return config
