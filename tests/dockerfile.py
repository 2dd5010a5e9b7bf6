"""A small Dockerfile parser for the static checks of docker/ (tests/test_docker_files.py): instructions in
order, continuation lines joined and comments dropped, and FROM/ARG/RUN/COPY/ENV/WORKDIR/VOLUME/ENTRYPOINT/CMD
read into their parts (exec or shell form, COPY's flags, ENV's pairs, a RUN's commands and its pip calls).

    cpu = Dockerfile.load("Dockerfile.cpu")
    (index, extras, words), = project_installs(cpu)
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

DOCKER = Path(__file__).resolve().parent.parent / "docker"


@dataclass
class Instruction:
    keyword: str  # upper case
    args: str  # everything after the keyword, continuation lines joined
    line: int  # where the instruction starts


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order. A trailing backslash continues an instruction on the next line; comment and empty
    lines are dropped, also inside a continuation (as Docker does)."""
    instructions: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not parts:
            start = number
        continued = stripped.endswith("\\")
        parts.append(stripped[:-1].strip() if continued else stripped)
        if continued:
            continue
        keyword, _, args = " ".join(p for p in parts if p).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        parts = []
    assert not parts, "the file ends inside a line continuation"
    return instructions


def exec_form(args: str) -> list[str] | None:
    """The JSON-array (exec) form of CMD/ENTRYPOINT/VOLUME/COPY, else None (shell form)."""
    if not args.startswith("["):
        return None
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def copy_parts(args: str) -> tuple[dict[str, str], list[str], str]:
    """COPY's (--flags, sources, destination), shell or exec form."""
    flags, rest = {}, args
    while match := re.match(r"--([\w-]+)(?:=(\S*))?\s+", rest):
        flags[match[1]] = match[2] or ""
        rest = rest[match.end() :]
    words = exec_form(rest) or shlex.split(rest)
    assert len(words) >= 2, f"COPY needs a source and a destination: {args}"
    return flags, words[:-1], words[-1]


def env_pairs(args: str) -> dict[str, str]:
    """ENV's variables: `K=V K2="V 2"` or the legacy `K V`."""
    words = shlex.split(args)
    if "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    assert all("=" in w for w in words), args
    return dict(w.split("=", 1) for w in words)


def shell_commands(args: str) -> list[list[str]]:
    """A RUN's shell-form script as its commands (split on `&&`, `;` and `||`), each as its words."""
    commands, current = [], []
    for word in shlex.split(args):
        if word in ("&&", ";", "||"):
            commands.append(current)
            current = []
        else:
            current.append(word)
    return [c for c in [*commands, current] if c]


@dataclass
class Dockerfile:
    name: str
    instructions: list[Instruction]

    @classmethod
    def load(cls, name: str) -> Dockerfile:
        return cls(name, parse_dockerfile((DOCKER / name).read_text()))

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        return {k: v for i in self.all("ENV") for k, v in env_pairs(i.args).items()}

    def volumes(self) -> list[str]:
        return [v for i in self.all("VOLUME") for v in (exec_form(i.args) or i.args.split())]

    def commands(self) -> list[tuple[int, list[str]]]:
        """Every RUN command, in order, with the index of its instruction."""
        return [
            (index, command)
            for index, i in enumerate(self.instructions)
            if i.keyword == "RUN"
            for command in shell_commands(i.args)
        ]

    def copied_before(self, index: int) -> list[str]:
        return [s for i in self.instructions[:index] if i.keyword == "COPY" for s in copy_parts(i.args)[1]]


def pip(command: list[str]) -> tuple[str, list[str]] | None:
    """(`install` | `uninstall` | ..., its words after it) when `command` runs pip, else None."""
    for index, word in enumerate(command[:-1]):
        if word == "pip" or word.endswith("/pip") or (word == "-m" and command[index + 1] == "pip"):
            at = index + 1 if word != "-m" else index + 2
            if at < len(command):
                return command[at], command[at + 1 :]
    return None


def project_installs(dockerfile: Dockerfile) -> list[tuple[int, list[str], list[str]]]:
    """(instruction index, extras, pip install words) of every pip install of the project itself (`.[extras]`)."""
    found = []
    for index, command in dockerfile.commands():
        run = pip(command)
        if run and run[0] == "install":
            for word in run[1]:
                if match := re.fullmatch(r"\.(?:\[([\w,]+)\])?", word):
                    found.append((index, (match[1] or "").split(",") if match[1] else [], run[1]))
    return found
