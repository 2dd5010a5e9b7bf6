"""A stage is one declaration, in its own module of rge_core/stages/: its name, what it reads and what it provides
to later stages, its config section, its command and that command's options, and the function that describes
its artifact (a StageSpec, built or reused by rge_core/builds.py). The pipeline's order, `rge <command>`,
`rge run --stages` and the Prefect flow's tasks are all derived from the declarations (stages/registry.py).

    STAGE = StageDecl("assemble", provides="dataset", needs=("pairs", "rationales"), section="assemble",
                      spec=assemble_spec, help="Assemble the versioned training dataset.")

What a stage reads is named by role, not by stage: a stage that reads and provides the same role (a filter of
the rationales, say) slots in after the stage that provided it, and the stages that read the role get its
output from then on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rge_core.artifacts.store import ArtifactStore
from rge_core.builds import StageSpec
from rge_core.config.schema import Config

# A stage gets the versions its needs resolved to (one that built nothing, a user checkpoint, is absent) and
# describes its artifact without building it; None when it has nothing to build.
SpecFn = Callable[[Config, ArtifactStore, dict[str, str]], StageSpec | None]


@dataclass(frozen=True)
class Option:
    """An option of the stage's command that sets one setting: `--prompt-set DIR` is curation.prompt_set=DIR."""

    flag: str
    setting: str
    help: str
    kind: str = "value"  # value | list (comma-separated) | on-off

    @property
    def param(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def override(self, value: str) -> str:
        """The `--set` form of the option's value."""
        if self.kind == "list":
            return f"{self.setting}=[{value}]"
        if self.kind == "on-off":
            if value not in ("on", "off"):
                raise ValueError(f"{self.flag}: on or off, got {value!r}")
            return f"{self.setting}={'true' if value == 'on' else 'false'}"
        return f"{self.setting}={value}"


@dataclass(frozen=True)
class StageDecl:
    name: str  # the stage in `rge run --stages` and the flow's task
    provides: str  # the role of its artifact for later stages
    spec: SpecFn
    needs: tuple[str, ...] = ()  # the roles it reads
    section: str | None = None  # its config section
    command: str | None = None  # `rge <command>`: the name unless given; "" for no command of its own
    help: str = ""
    options: tuple[Option, ...] = ()
    # Needs that a config makes unnecessary (evaluating a named model reads no trained one).
    skipped_needs: Callable[[Config], tuple[str, ...]] = lambda config: ()
    # Whether it loads the pipeline's model here (the placement is checked before the first stage then).
    loads_model: Callable[[Config], bool] = lambda config: False

    @property
    def command_name(self) -> str:
        return self.name if self.command is None else self.command

    def needed(self, config: Config) -> tuple[str, ...]:
        skipped = self.skipped_needs(config)
        return tuple(role for role in self.needs if role not in skipped)
