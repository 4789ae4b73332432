"""`seqchat ask` (one question, then exit) and `seqchat chat` (an interactive conversation in the terminal)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from seqchat.cli.argtypes import add_device_options, positive_int
from seqchat.errors import SeqChatInputError
from seqchat.modeling.processor import REFERENCE, check_reference_name
from seqchat.modeling.sequences import Sequence, infer_modality, make_sequence, read_fasta
from seqchat.serving.predict import class_task
from seqchat.tasks.registry import get_task


def _sequences(args: argparse.Namespace) -> dict:
    seqs: dict = {}
    for path in args.fasta or []:
        for s in read_fasta(path, args.modality):
            if s.name in seqs:
                raise SeqChatInputError(f"sequence id '{s.name}' appears in more than one FASTA file")
            seqs[s.name] = s
    for item in args.seq or []:
        name, sep, residues = item.partition("=")
        if not sep:
            raise SeqChatInputError(f"--seq takes NAME=RESIDUES, got '{item[:30]}'")
        check_reference_name(name)
        seqs[name] = make_sequence(residues, args.modality or infer_modality(residues, name), name)
    return seqs


def run_ask(args: argparse.Namespace) -> int:
    """Answer once and exit."""
    seqs = _sequences(args)
    class_task(args.task)  # before the model loads, not after generating
    from seqchat.serving.api import SeqChat  # start-up: loads the model code (transformers)

    bot = SeqChat.load(model=args.model, config=args.config, device=args.device, dtype=args.dtype)
    answer = bot.ask(args.question, seqs, max_new_tokens=args.max_new_tokens, task=args.task)
    if args.json:
        print(json.dumps(answer_record(answer)))
        return 0
    print(answer)
    if args.confidence:
        print(_confidence_line(answer, args.task), file=sys.stderr)
    return 0


def answer_record(answer: Any) -> dict[str, Any]:
    """An answer as one JSON-ready object: text, confidence and, with a task, class probabilities."""
    probs = {str(k): v for k, v in answer.probabilities.items()} if answer.probabilities else None
    return {"answer": str(answer), "confidence": answer.confidence, "probability": answer.probability,
            "probabilities": probs}  # fmt: skip


def _confidence_line(answer: Any, task: str | None) -> str:
    """The answer's confidence, and with a task the class probabilities by class name."""
    parts = [f"confidence {100 * answer.confidence:.3g}%"] if answer.confidence is not None else []
    if answer.probability is not None:
        parts.append(f"P(stated class) {100 * answer.probability:.1f}%")
    if answer.probabilities and task:
        labels = get_task(task).labels
        parts.append(", ".join(f"{labels.get(k, k)} {100 * v:.1f}%" for k, v in answer.probabilities.items()))
    return "  [" + "; ".join(parts) + "]"


HELP = """Refer to sequences as @id in your questions. Commands:
  /load FILE [FILE...]   add the records of FASTA files
  /paste [NAME]          paste FASTA records or bare residues, then an empty line
                         (a line starting with '>' starts a paste too)
  /list                  list the loaded sequences
  /forget NAME...|all    drop sequences
  /reset                 start a new conversation (sequences stay loaded)
  /confidence            show or hide the confidence of each answer
  /task NAME|off         add class probabilities of a binary/multi-class task to answers
  /help                  this text
  /quit                  leave (Ctrl-D too)"""


class ChatSession:
    """A terminal conversation: a pool of named sequences, the history and the commands that change them."""

    def __init__(
        self,
        bot: Any,
        sequences: dict[str, Sequence] | None = None,
        out: TextIO = sys.stdout,
        err: TextIO = sys.stderr,
        max_new_tokens: int = 128,
        show_confidence: bool = False,
        task: str | None = None,
    ):
        self.bot = bot
        self.pool: dict[str, Sequence] = dict(sequences or {})
        self.history: list[dict[str, str]] = []
        self.out, self.err = out, err
        self.max_new_tokens = max_new_tokens
        self.show_confidence = show_confidence
        self.task = task

    def say(self, text: str) -> None:
        """Print a line of session output."""
        print(text, file=self.out, flush=True)

    def error(self, text: str) -> None:
        """Print an error; the session goes on."""
        print(f"seqchat: error: {text}", file=self.err, flush=True)

    # -- sequences --
    def add(self, seqs: list[Sequence]) -> None:
        """Add sequences to the pool (a name already there is replaced, and said so)."""
        for s in seqs:
            note = " (replaces the earlier one)" if s.name in self.pool else ""
            self.pool[s.name] = s
            self.say(
                f"loaded @{s.name}: {s.modality.upper()}, {len(s)} {'aa' if s.modality == 'protein' else 'nt'}{note}"
            )

    def paste(self, text: str, name: str | None = None) -> None:
        """Add pasted FASTA records, or one bare sequence named `name` (default seqN)."""
        if text.lstrip().startswith(">"):
            self.add(read_fasta(text))
            return
        residues = "".join(text.split())
        if not residues:
            raise SeqChatInputError("nothing was pasted")
        if name is None:
            name = next(f"seq{i}" for i in range(1, len(self.pool) + 2) if f"seq{i}" not in self.pool)
        check_reference_name(name)
        self.add([make_sequence(residues, infer_modality(residues, name), name)])

    def _referenced_in_history(self, name: str) -> bool:
        return any(
            m.group(2) and m.group(2).rstrip(".:|-") == name
            for msg in self.history if msg["role"] != "assistant" for m in REFERENCE.finditer(msg["content"])
        )  # fmt: skip

    def forget(self, names: list[str]) -> None:
        """Drop sequences; the conversation restarts if it referred to one of them."""
        if names == ["all"]:
            names = list(self.pool)
        missing = [n.lstrip("@") for n in names if n.lstrip("@") not in self.pool]
        if missing:
            raise SeqChatInputError(f"no sequence named {', '.join(missing)}; /list shows the loaded ones")
        restart = False
        for n in (x.lstrip("@") for x in names):
            restart = restart or self._referenced_in_history(n)
            del self.pool[n]
            self.say(f"forgot @{n}")
        if restart:
            self.history = []
            self.say("the conversation referred to a forgotten sequence, so it starts anew")

    # -- one line of input --
    def handle(self, line: str, more: Callable[[], str | None]) -> bool:
        """Act on one input line (`more` reads the next line, for pastes); False means leave."""
        line = line.strip()
        if not line:
            return True
        try:
            if line.startswith(">"):
                self.paste("\n".join([line, *self._until_blank(more)]))
            elif line.startswith("/"):
                return self._command(line, more)
            else:
                self._question(line)
        except SeqChatInputError as e:
            self.error(str(e))
        except Exception as e:  # noqa: BLE001  (a failed command must not end the session and lose its state)
            self.error(f"{line.split()[0]} failed ({type(e).__name__}: {e}); the session goes on")
        return True

    @staticmethod
    def _until_blank(more: Callable[[], str | None]) -> Iterator[str]:
        while True:
            nxt = more()
            if nxt is None or not nxt.strip():
                return
            yield nxt.rstrip("\n")

    def _command(self, line: str, more: Callable[[], str | None]) -> bool:
        cmd, *args = line.split()
        cmd = cmd.lower()
        if cmd in ("/quit", "/exit", "/q"):
            return False
        if cmd == "/help":
            self.say(HELP)
        elif cmd == "/load":
            if not args:
                raise SeqChatInputError("/load needs a FASTA file: /load FILE")
            for path in args:
                self.add(read_fasta(path))
        elif cmd == "/paste":
            self.say("paste FASTA records or residues; finish with an empty line")
            self.paste("\n".join(self._until_blank(more)), args[0] if args else None)
        elif cmd == "/list":
            if not self.pool:
                self.say("no sequences loaded: /load FILE or /paste")
            for s in self.pool.values():
                self.say(f"@{s.name}\t{s.modality.upper()}\t{len(s)}")
        elif cmd == "/forget":
            if not args:
                raise SeqChatInputError("/forget needs names (or 'all')")
            self.forget(args)
        elif cmd == "/reset":
            self.history = []
            self.say("new conversation")
        elif cmd == "/confidence":
            self.show_confidence = not self.show_confidence
            self.say(f"confidence display {'on' if self.show_confidence else 'off'}")
        elif cmd == "/task":
            if not args or args[0] == "off":
                self.task = None
                self.say("no task: answers carry no class probabilities")
            else:
                self.task = class_task(args[0])
                self.say(f"answers about one sequence now carry {self.task} class probabilities")
        else:
            raise SeqChatInputError(f"unknown command {cmd}; /help lists the commands")
        return True

    def _question(self, question: str) -> None:
        """Ask, stream the answer, and keep both in the history."""
        started = [False]

        def stream(piece: str) -> None:
            if not started[0]:  # the prefix waits for the answer, so an input error is printed alone
                print("seqchat> ", end="", file=self.out)
                started[0] = True
            print(piece, end="", file=self.out, flush=True)

        answer = self.bot.ask(
            question, self.pool, self.history, self.max_new_tokens, stream=stream, task=self.task
        )
        if not started[0]:
            print("seqchat> " + (answer.text or "(no answer)"), end="", file=self.out)
        print(file=self.out, flush=True)
        self.history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.text}]
        if self.show_confidence:
            self.say(_confidence_line(answer, self.task))


def _line_reader(stream: TextIO) -> Callable[[str], str | None]:
    """Read a line with a prompt on a terminal, plainly from a pipe; None at end of input."""
    interactive = stream.isatty()
    if interactive:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (line editing and history for input())

    def read(prompt: str) -> str | None:
        if interactive:
            try:
                return input(prompt)
            except EOFError:
                return None
        line = stream.readline()
        return None if line == "" else line

    return read


def run_chat(args: argparse.Namespace) -> int:
    """An interactive conversation until /quit or end of input."""
    seqs = _sequences(args)
    class_task(args.task)
    from seqchat.serving.api import SeqChat  # start-up: loads the model code (transformers)

    bot = SeqChat.load(model=args.model, config=args.config, device=args.device, dtype=args.dtype)
    session = ChatSession(bot, seqs, max_new_tokens=args.max_new_tokens, show_confidence=args.confidence,
                          task=args.task)  # fmt: skip
    read = _line_reader(sys.stdin)
    session.say("seqchat chat: refer to sequences as @id; /help lists the commands")
    for s in seqs.values():
        session.say(f"@{s.name}\t{s.modality.upper()}\t{len(s)}")
    while True:
        line = read("you> ")
        if line is None or not session.handle(line, lambda: read("... ")):
            return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fasta", action="append", help="FASTA file(s); records are named by their ids")
    p.add_argument("--seq", action="append", help="an inline sequence as NAME=RESIDUES")
    p.add_argument("--modality", choices=["dna", "rna", "protein"], help="force the modality (else guessed)")
    p.add_argument("--model", help="trained model folder (default: the shipped model)")
    p.add_argument("--config", help="build an untrained architecture from this YAML instead")
    p.add_argument("--task", help="binary/multi-class task whose class probabilities answers carry")
    p.add_argument("--confidence", action="store_true", help="show each answer's confidence")
    add_device_options(p)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `ask` and `chat` subcommands."""
    p = sub.add_parser("ask", help="answer one question about sequences (refer to them as @id)")
    p.add_argument("question", help='e.g. "Is there a promoter in @seq1?"')
    _common(p)
    p.add_argument("--max-new-tokens", type=positive_int, default=96)
    p.add_argument("--json", action="store_true", help="print one JSON object (answer, confidence, probabilities)")
    p.set_defaults(func=run_ask)
    c = sub.add_parser("chat", help="interactive chat about sequences (refer to them as @id)")
    _common(c)
    c.add_argument("--max-new-tokens", type=positive_int, default=128)
    c.set_defaults(func=run_chat)
