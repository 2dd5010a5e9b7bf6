"""A job: the work a stage hands to a worker process (the trainer, an eval shard, a curation engine) as a JSON
file, read back there as the same typed, checked dataclass. Jobs carry config sections whole (the model's
placement and image bounds travel as `model: ModelConfig`), never copies of single settings.

    job_file.write_text(job.to_json())       # in the stage
    job = TrainJob.from_json(text)           # in the worker
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TypeVar

from rge_core.config.loader import from_dict

J = TypeVar("J", bound="Job")


class Job:
    """The base of every job dataclass: its serialisation."""

    def to_json(self) -> str:
        return json.dumps(asdict(self))  # type: ignore[call-overload]  # every Job is a dataclass

    @classmethod
    def from_json(cls: type[J], text: str | bytes) -> J:
        return from_dict(cls, json.loads(text))
